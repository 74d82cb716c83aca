//! Event validation on simd-json's borrowed values: the rules of `Event`'s own check, in the
//! same order, so both paths reject the same inputs with the same error.

use chrono::{DateTime, Utc};
use simd_json::borrowed::{Object, Value};
use simd_json::StaticNode;

use crate::error::EventError;
use crate::event::EventType;
use crate::time::parse_timestamp;

pub(crate) const STRING_FIELDS: [&str; 2] = ["event", "name"];
pub(crate) const ID_FIELDS: [&str; 5] = ["messageId", "anonymousId", "userId", "groupId", "previousId"];
pub(crate) const OBJECT_FIELDS: [&str; 4] = ["properties", "traits", "context", "integrations"];
pub(crate) const TIME_FIELDS: [&str; 4] = ["timestamp", "originalTimestamp", "sentAt", "receivedAt"];

/// The client's `timestamp`, `originalTimestamp`, `sentAt` and `receivedAt`, parsed.
pub(crate) type CheckedTimes = [Option<DateTime<Utc>>; 4];

/// The JSON type name of a borrowed value, worded as [`crate::error::json_type_name`] does.
pub(crate) fn type_name(value: &Value<'_>) -> &'static str {
    match value {
        Value::Static(StaticNode::Null) => "null",
        Value::Static(StaticNode::Bool(_)) => "a boolean",
        Value::Static(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn is_null(value: &Value<'_>) -> bool {
    matches!(value, Value::Static(StaticNode::Null))
}

fn is_integer(value: &Value<'_>) -> bool {
    matches!(value, Value::Static(StaticNode::I64(_) | StaticNode::U64(_)))
}

fn is_number(value: &Value<'_>) -> bool {
    matches!(value, Value::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)))
}

/// Checks an event object; the same rules, order and errors as `Event::from_value`.
pub(crate) fn check(
    map: &Object<'_>,
    endpoint_type: Option<EventType>,
) -> Result<(EventType, CheckedTimes), EventError> {
    let kind = match (map.get("type"), endpoint_type) {
        (None, Some(expected)) => expected,
        (Some(v), Some(expected)) if is_null(v) => expected,
        (None, None) => return Err(EventError::MissingField("type")),
        (Some(v), None) if is_null(v) => return Err(EventError::MissingField("type")),
        (Some(Value::String(name)), expected) => {
            let kind = EventType::parse(name).ok_or_else(|| EventError::UnknownType(name.to_string()))?;
            match expected {
                Some(expected) if expected != kind => {
                    return Err(EventError::TypeMismatch { expected: expected.as_str(), found: name.to_string() })
                }
                _ => kind,
            }
        }
        (Some(other), _) => return Err(wrong_type("type", "a string", other)),
    };
    for field in STRING_FIELDS {
        if let Some(v) = map.get(field).filter(|v| !is_null(v) && !matches!(v, Value::String(_))) {
            return Err(wrong_type(field, "a string", v));
        }
    }
    // Several SDKs send numeric ids (user ids, and message ids from some server libraries);
    // they are kept as their decimal text.
    for field in ID_FIELDS {
        if let Some(v) = map.get(field).filter(|v| !(is_null(v) || matches!(v, Value::String(_)) || is_integer(v))) {
            return Err(wrong_type(field, "a string", v));
        }
    }
    for field in OBJECT_FIELDS {
        if let Some(v) = map.get(field).filter(|v| !is_null(v) && !matches!(v, Value::Object(_))) {
            return Err(wrong_type(field, "an object", v));
        }
    }
    let mut times = [None; 4];
    for (slot, field) in times.iter_mut().zip(TIME_FIELDS) {
        *slot = match map.get(field) {
            None => None,
            Some(v) if is_null(v) => None,
            Some(Value::String(text)) => {
                Some(parse_timestamp(text).ok_or_else(|| EventError::BadTimestamp { field, value: text.to_string() })?)
            }
            Some(other) => return Err(wrong_type(field, "a string", other)),
        };
    }
    let present = |field: &str| match map.get(field) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(v) => is_number(v),
        None => false,
    };
    if !present("anonymousId") && !present("userId") {
        return Err(EventError::MissingIdentity);
    }
    match kind.required_field() {
        Some(field) if !present(field) => Err(EventError::MissingField(field)),
        _ => Ok((kind, times)),
    }
}

fn wrong_type(field: &'static str, expected: &'static str, got: &Value<'_>) -> EventError {
    EventError::WrongType { field, expected, got: type_name(got) }
}

/// The text an id field is written with: a string as sent, an integer as its decimal text.
pub(crate) fn id_text<'v>(value: &'v Value<'_>) -> Option<std::borrow::Cow<'v, str>> {
    match value {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Static(StaticNode::I64(n)) => Some(n.to_string().into()),
        Value::Static(StaticNode::U64(n)) => Some(n.to_string().into()),
        _ => None,
    }
}
