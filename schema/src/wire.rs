//! What clickstream writes to Kafka besides the event JSON: header names and dead letters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Header carrying the source's name (never its write key).
pub const HEADER_SOURCE: &str = "source";
/// Header carrying the event type, so consumers can filter without parsing.
pub const HEADER_EVENT_TYPE: &str = "event-type";
/// Header naming the protocol the event arrived in (`segment`, `pixel`, `posthog`), so
/// consumers can tell translated events from native ones.
pub const HEADER_PROTOCOL: &str = "protocol";

/// A record that could not be accepted, written to the dead-letter topic with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Stable machine-readable reason, such as `missing_identity`.
    pub reason_kind: String,
    /// Human-readable reason naming the offending field.
    pub reason: String,
    /// Name of the source whose request held the record.
    pub source: String,
    /// Position of the record in its request, when it came in a batch.
    pub index: Option<usize>,
    /// When the gateway received the request (ISO-8601).
    pub received_at: String,
    /// The record as received, or null when it was not valid JSON. When the letter would be
    /// over [`DEAD_LETTER_MAX_BYTES`], the start of the record's JSON text, as a string.
    pub payload: Value,
    /// Whether `payload` holds only the start of the record's JSON text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
}

/// The largest dead letter written: under librdkafka's default `message.max.bytes`
/// (1,000,000), with room for the record's headers. A rejected event re-serialized can grow
/// past the request's own size (`1e15` is written `1000000000000000.0`), and a record Kafka
/// refuses for its size would be retried, and spooled, forever.
pub const DEAD_LETTER_MAX_BYTES: usize = 900_000;

/// How much of a rejection's reason a dead letter keeps: a reason may quote the value it
/// refuses.
const REASON_MAX_CHARS: usize = 1_024;

impl DeadLetter {
    /// The letter's JSON, at most [`DEAD_LETTER_MAX_BYTES`]: past it, the payload is cut to the
    /// start of its JSON text and flagged, and the reason to its first characters.
    pub fn to_json(&self) -> Vec<u8> {
        within_limit(self, &self.payload, |letter, payload| {
            letter.reason = letter.reason.chars().take(REASON_MAX_CHARS).collect();
            (letter.payload, letter.payload_truncated) = (payload, true);
        })
    }
}

/// `letter` as JSON; over [`DEAD_LETTER_MAX_BYTES`], a copy that `cut` gave the start of
/// `payload`'s text, as long as the copy's other fields leave room for.
fn within_limit<T: Serialize + Clone>(letter: &T, payload: &Value, cut: impl Fn(&mut T, Value)) -> Vec<u8> {
    let whole = serialize(letter);
    if whole.len() <= DEAD_LETTER_MAX_BYTES {
        return whole;
    }
    let mut short = letter.clone();
    cut(&mut short, Value::Null);
    // Written as a string, each byte of the text takes at most two (`"` and `\` are escaped;
    // serde_json's text has no raw control characters).
    let room = DEAD_LETTER_MAX_BYTES.saturating_sub(serialize(&short).len() + 2) / 2;
    let text = serde_json::to_string(payload).unwrap_or_default();
    cut(&mut short, Value::String(crate::text_prefix(&text, room).to_owned()));
    serialize(&short)
}

fn serialize(letter: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(letter).unwrap_or_else(|e| unreachable!("a dead letter always serializes: {e}"))
}

/// A record a consumer (the enricher) could not process, with where it was read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerDeadLetter {
    /// Stable machine-readable reason, such as `invalid_json`.
    pub reason_kind: String,
    /// Human-readable reason.
    pub reason: String,
    /// Topic, partition and offset of the record.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record as read: its JSON when it parses, else its text (lossy UTF-8), else null.
    /// When the letter would be over [`DEAD_LETTER_MAX_BYTES`], the start of that as JSON
    /// text, as a string.
    pub payload: Value,
    /// Whether `payload` holds only the start of the record's JSON text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
}

impl ConsumerDeadLetter {
    /// As [`DeadLetter::to_json`]: a record that cannot be written would stop its partition.
    pub fn to_json(&self) -> Vec<u8> {
        within_limit(self, &self.payload, |letter, payload| {
            letter.reason = letter.reason.chars().take(REASON_MAX_CHARS).collect();
            (letter.payload, letter.payload_truncated) = (payload, true);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(payload: Value, reason: String) -> DeadLetter {
        DeadLetter {
            reason_kind: "event_too_large".into(),
            reason,
            source: "web".into(),
            index: Some(3),
            received_at: "2026-01-01T00:00:00.000Z".into(),
            payload,
            payload_truncated: false,
        }
    }

    /// A payload that grows when re-serialized (`1e15` is written with all its digits), with
    /// quotes that grow again once the text is a string, and a long reason: the letter stays
    /// under the limit, keeps the start of the payload's text, and says it is cut.
    #[test]
    fn a_letter_over_the_limit_keeps_the_start_of_its_payload() {
        let numbers: Vec<Value> = (0..120_000).map(|_| serde_json::from_str("1e15").expect("number")).collect();
        let payload = serde_json::json!({"type": "track", "q": "\"".repeat(50_000), "properties": {"n": numbers}});
        let text = serde_json::to_string(&payload).expect("json");
        assert!(text.len() > DEAD_LETTER_MAX_BYTES);
        let out = letter(payload, "é".repeat(5_000)).to_json();
        assert!(out.len() <= DEAD_LETTER_MAX_BYTES, "{}", out.len());
        let read: DeadLetter = serde_json::from_slice(&out).expect("a dead letter");
        assert!(read.payload_truncated);
        let kept = read.payload.as_str().expect("the payload's text");
        assert!(kept.len() > DEAD_LETTER_MAX_BYTES / 4 && text.starts_with(kept), "{}", kept.len());
        assert_eq!((read.reason.chars().count(), read.index), (REASON_MAX_CHARS, Some(3)));
    }

    #[test]
    fn a_consumer_letter_over_the_limit_is_cut_too() {
        let text = "\"".repeat(DEAD_LETTER_MAX_BYTES);
        let letter = ConsumerDeadLetter {
            reason_kind: "invalid_json".into(),
            reason: "not JSON".into(),
            topic: "events.raw".into(),
            partition: 2,
            offset: 7,
            payload: Value::String(text.clone()),
            payload_truncated: false,
        };
        let out = letter.to_json();
        assert!(out.len() <= DEAD_LETTER_MAX_BYTES, "{}", out.len());
        let read: ConsumerDeadLetter = serde_json::from_slice(&out).expect("a dead letter");
        assert!(read.payload_truncated && (read.partition, read.offset) == (2, 7));
        let whole = serde_json::to_string(&Value::String(text)).expect("json");
        assert!(whole.starts_with(read.payload.as_str().expect("text")));
    }

    #[test]
    fn a_letter_within_the_limit_is_written_whole() {
        let small = letter(serde_json::json!({"type": "track", "n": 1e15}), "too large".into());
        let read: DeadLetter = serde_json::from_slice(&small.to_json()).expect("a dead letter");
        assert_eq!(read, small);
        assert!(!String::from_utf8(small.to_json()).expect("utf-8").contains("payloadTruncated"));
    }
}
