//! The clickstream event model shared by every service: Segment-compatible events, their
//! validation, the request payload formats and the Kafka wire format.

mod connection;
mod error;
mod event;
mod json_text;
mod limits;
mod payload;
mod privacy;
mod splice;
mod stored;
mod time;
mod wire;

pub use connection::Connection;
pub use error::EventError;
pub use event::{Event, EventType};
pub use json_text::write_json_str;
pub use limits::{text_prefix, Limits};
pub use payload::{parse_json, parse_ndjson, Envelope, PayloadError, Rejected};
pub use privacy::{anonymize_ip, ip_text};
pub use splice::{append_member, BatchFields, CheckedEvent, RawEnvelope};
pub use stored::{JsonItems, JsonRef, StoredEvent};
pub use time::{format_timestamp, parse_timestamp, EdgeTimes};
pub use wire::{
    ConsumerDeadLetter, DeadLetter, DEAD_LETTER_MAX_BYTES, HEADER_EVENT_TYPE, HEADER_PROTOCOL, HEADER_SOURCE,
};
