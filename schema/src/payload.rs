//! Request body formats: a Segment batch, a single event, a JSON array, or NDJSON.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{json_type_name, EventError};
use crate::event::{Event, EventType};
use crate::time::parse_timestamp;

/// Why a whole request body is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    BadShape(String),
    #[error("the request holds more than the {limit} events one request may hold; send them in several requests")]
    TooManyEvents { limit: usize },
}

/// Parses JSON with simd-json. The buffer is used as scratch space and left scrambled.
pub fn parse_json(body: &mut [u8]) -> Result<Value, PayloadError> {
    simd_json::serde::from_slice(body).map_err(|e| PayloadError::InvalidJson(e.to_string()))
}

/// Parses newline-delimited JSON: one event per non-blank line. A bad line rejects only itself.
pub fn parse_ndjson(body: &mut [u8]) -> Envelope {
    let items = body
        .split_mut(|b| *b == b'\n')
        .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .map(|line| parse_json(line).map_err(|e| EventError::InvalidJson(e.to_string())))
        .collect();
    Envelope::from_items(items)
}

/// The events of one request, not yet validated, plus what the request says about all of them.
#[derive(Debug, Default)]
pub struct Envelope {
    /// One entry per event in request order; an entry that failed to parse carries its error.
    pub items: Vec<Result<Value, EventError>>,
    /// The batch-level `sentAt`, used for events without their own.
    pub sent_at: Option<DateTime<Utc>>,
    /// The write key found in the body: the batch's `writeKey`, else the first event's.
    pub write_key: Option<String>,
    /// Batch-level `context` and `integrations`, merged under each event's own.
    shared_context: Option<Map<String, Value>>,
    shared_integrations: Option<Map<String, Value>>,
}

impl Envelope {
    /// A Segment batch: `{"batch": [...], "sentAt": ..., "writeKey": ..., "context": ...}`.
    pub fn from_batch(value: Value) -> Result<Self, PayloadError> {
        let Value::Object(mut map) = value else {
            return Err(PayloadError::BadShape(format!(
                "batch body must be a JSON object with a `batch` array, got {}",
                json_type_name(&value)
            )));
        };
        let items = match map.remove("batch") {
            Some(Value::Array(items)) => items.into_iter().map(Ok).collect(),
            Some(other) => {
                return Err(PayloadError::BadShape(format!(
                    "field `batch` must be an array, got {}",
                    json_type_name(&other)
                )))
            }
            None => return Err(PayloadError::BadShape("missing required field `batch`".into())),
        };
        let sent_at = match map.remove("sentAt") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(parse_timestamp(&text).ok_or_else(|| {
                PayloadError::BadShape(format!("field `sentAt` is not an ISO-8601 timestamp: {text:?}"))
            })?),
            Some(other) => {
                return Err(PayloadError::BadShape(format!(
                    "field `sentAt` must be a string, got {}",
                    json_type_name(&other)
                )))
            }
        };
        let mut envelope = Self::from_items(items);
        envelope.sent_at = sent_at;
        if let Some(Value::String(key)) = map.remove("writeKey") {
            envelope.write_key = Some(key);
        }
        envelope.shared_context = take_object(&mut map, "context");
        envelope.shared_integrations = take_object(&mut map, "integrations");
        Ok(envelope)
    }

    /// A single event, as posted to `/v1/track` and the like.
    pub fn from_single(value: Value) -> Self {
        Self::from_items(vec![Ok(value)])
    }

    /// `/v1/events`: a JSON array of events, or one event object.
    pub fn from_array_or_single(value: Value) -> Self {
        match value {
            Value::Array(items) => Self::from_items(items.into_iter().map(Ok).collect()),
            single => Self::from_single(single),
        }
    }

    fn from_items(items: Vec<Result<Value, EventError>>) -> Self {
        let write_key = items.iter().find_map(|item| match item {
            Ok(Value::Object(event)) => event.get("writeKey").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        });
        Self { items, write_key, ..Self::default() }
    }

    /// Validates every item. The result has one entry per item, in order.
    pub fn into_events(self, endpoint_type: Option<EventType>) -> Vec<Result<Event, Rejected>> {
        let (context, integrations) = (self.shared_context, self.shared_integrations);
        self.items
            .into_iter()
            .map(|item| {
                let value = item.map_err(|error| Rejected { error, payload: Value::Null })?;
                let mut event =
                    Event::from_value(value, endpoint_type).map_err(|(error, payload)| Rejected { error, payload })?;
                merge_under(&mut event.context, context.as_ref());
                merge_under(&mut event.integrations, integrations.as_ref());
                Ok(event)
            })
            .collect()
    }
}

/// An item that failed validation, with the value as it was received (null if unparseable).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub error: EventError,
    pub payload: Value,
}

fn take_object(map: &mut Map<String, Value>, field: &str) -> Option<Map<String, Value>> {
    match map.remove(field) {
        Some(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// Adds the batch's keys that the event does not set itself.
fn merge_under(target: &mut Option<Map<String, Value>>, shared: Option<&Map<String, Value>>) {
    let Some(shared) = shared else { return };
    let target = target.get_or_insert_with(Map::new);
    for (key, value) in shared {
        target.entry(key.clone()).or_insert_with(|| value.clone());
    }
}
