//! Size limits on events and request bodies, Segment's by default.

use serde::{Deserialize, Serialize};

/// Segment's documented per-event limit.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 32 * 1024;
/// Segment's documented per-batch limit.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 500 * 1024;

/// Size limits applied at the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest event, in bytes, as written to Kafka (including the fields the gateway adds).
    /// The gateway refuses to start when it plus 4 KiB is over the producer's `message.max.bytes`.
    pub max_event_bytes: usize,
    /// Largest request body, in bytes, after gzip decompression.
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_event_bytes: DEFAULT_MAX_EVENT_BYTES, max_batch_bytes: DEFAULT_MAX_BATCH_BYTES }
    }
}
