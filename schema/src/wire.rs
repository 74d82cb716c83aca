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
    /// The record as received, or null when it was not valid JSON.
    pub payload: Value,
}

impl DeadLetter {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|e| unreachable!("a DeadLetter always serializes: {e}"))
    }
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
    pub payload: Value,
}

impl ConsumerDeadLetter {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|e| unreachable!("a ConsumerDeadLetter always serializes: {e}"))
    }
}
