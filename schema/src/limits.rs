//! Size limits on events and request bodies, Segment's by default.

use serde::{Deserialize, Serialize};

/// Segment's documented per-event limit.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 32 * 1024;
/// Segment's documented per-batch limit.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 500 * 1024;
/// Events per request: a body of the smallest useful events (about 45 bytes each) at the
/// default body limit holds about 11,000.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 10_000;

/// Size limits applied at the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest event, in bytes, as written to Kafka (including the fields the gateway adds).
    /// The gateway refuses to start when it plus 4 KiB is over the producer's `message.max.bytes`.
    pub max_event_bytes: usize,
    /// Largest request body, in bytes, after gzip decompression.
    pub max_batch_bytes: usize,
    /// Most events in one request; more are refused whole with 413 `too_many_events`. Segment's
    /// SDKs send tens per batch; each event costs about 1 KB while it is handled, so a body of
    /// 160,000 `{}` items held 280 MB.
    pub max_batch_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
        }
    }
}

/// The longest start of `text` that is at most `max_bytes` long and ends on a character
/// boundary: what is kept of a client's text cut to a byte limit.
pub fn text_prefix(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let end = (0..=max_bytes).rev().find(|&at| text.is_char_boundary(at)).unwrap_or(0);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::text_prefix;

    #[test]
    fn a_prefix_ends_on_a_character_boundary() {
        assert_eq!(text_prefix("abc", 5), "abc");
        assert_eq!(text_prefix("abc", 2), "ab");
        // é is two bytes: a limit inside it keeps the text before it.
        assert_eq!(text_prefix("aéb", 2), "a");
        assert_eq!(text_prefix("aéb", 3), "aé");
        assert_eq!(text_prefix("é", 0), "");
    }
}
