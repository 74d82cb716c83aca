//! The Segment-compatible event: typed where the spec names a field, untouched everywhere else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{json_type_name, EventError};
use crate::time::{format_timestamp, parse_timestamp, EdgeTimes};

/// The six call types of the Segment spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Track,
    Page,
    Screen,
    Identify,
    Group,
    Alias,
}

impl EventType {
    pub const ALL: [EventType; 6] = [Self::Track, Self::Page, Self::Screen, Self::Identify, Self::Group, Self::Alias];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Identify => "identify",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The field besides an identity that the spec requires of this type, as both validation
    /// paths (owned and splice) check it.
    pub fn required_field(self) -> Option<&'static str> {
        match self {
            Self::Track => Some("event"),
            Self::Group => Some("groupId"),
            Self::Alias => Some("previousId"),
            _ => None,
        }
    }

    /// The one-letter path analytics.js uses (`/v1/t` for track, and so on).
    pub fn from_short_path(letter: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| letter.len() == 1 && t.as_str().starts_with(letter))
    }
}

/// One tracking event. Fields the spec names are typed; any other field the client sent is
/// kept in `extra` and written back out unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "Map<String, Value>")]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Track: the event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Page and screen: the page or screen name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_time")]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_time")]
    pub original_timestamp: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_time")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_time")]
    pub received_at: Option<DateTime<Utc>>,
    /// Every field the spec does not name, preserved as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn ser_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_timestamp(*t)),
        None => s.serialize_none(),
    }
}

impl TryFrom<Map<String, Value>> for Event {
    type Error = EventError;

    fn try_from(map: Map<String, Value>) -> Result<Self, EventError> {
        Self::from_map(map, None).map_err(|(error, _)| error)
    }
}

const STRING_FIELDS: [&str; 2] = ["event", "name"];
const ID_FIELDS: [&str; 5] = ["messageId", "anonymousId", "userId", "groupId", "previousId"];
const OBJECT_FIELDS: [&str; 4] = ["properties", "traits", "context", "integrations"];
const TIME_FIELDS: [&str; 4] = ["timestamp", "originalTimestamp", "sentAt", "receivedAt"];

impl Event {
    /// Validates a parsed JSON value as an event. `endpoint_type` is the type implied by the
    /// endpoint (`/v1/track`), used when the body has no `type` and checked when it has one.
    /// On failure the value comes back untouched, for the dead-letter topic.
    pub fn from_value(value: Value, endpoint_type: Option<EventType>) -> Result<Self, (EventError, Value)> {
        match value {
            Value::Object(map) => Self::from_map(map, endpoint_type).map_err(|(e, map)| (e, Value::Object(map))),
            other => Err((EventError::NotAnObject(json_type_name(&other)), other)),
        }
    }

    /// Reads an event back from its wire form (for consumers of the raw topics).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        let mut owned = bytes.to_vec();
        let value: Value =
            simd_json::serde::from_slice(&mut owned).map_err(|e| EventError::InvalidJson(e.to_string()))?;
        Self::from_value(value, None).map_err(|(error, _)| error)
    }

    fn from_map(
        mut map: Map<String, Value>,
        endpoint_type: Option<EventType>,
    ) -> Result<Self, (EventError, Map<String, Value>)> {
        let (kind, [timestamp, original_timestamp, sent_at, received_at]) = match check(&map, endpoint_type) {
            Ok(checked) => checked,
            Err(error) => return Err((error, map)),
        };
        // The write key authenticates the request; it must never reach Kafka.
        map.remove("type");
        map.remove("writeKey");
        for field in TIME_FIELDS {
            map.remove(field);
        }
        let mut take_string = |field: &str| match map.remove(field) {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (message_id, event, name) = (take_string("messageId"), take_string("event"), take_string("name"));
        let (anonymous_id, user_id) = (take_string("anonymousId"), take_string("userId"));
        let (group_id, previous_id) = (take_string("groupId"), take_string("previousId"));
        let mut take_object = |field: &str| match map.remove(field) {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        };
        Ok(Self {
            kind,
            message_id: message_id.filter(|id| !id.is_empty()),
            anonymous_id,
            user_id,
            event,
            name,
            group_id,
            previous_id,
            properties: take_object("properties"),
            traits: take_object("traits"),
            context: take_object("context"),
            integrations: take_object("integrations"),
            timestamp,
            original_timestamp,
            sent_at,
            received_at,
            extra: map,
        })
    }

    /// The partition key that keeps one visitor's events in order: `anonymousId`, else
    /// `userId`, so a visitor stays on one partition across `identify`.
    pub fn visitor_key(&self) -> Option<&str> {
        fn non_empty(id: &Option<String>) -> Option<&str> {
            id.as_deref().filter(|s| !s.is_empty())
        }
        non_empty(&self.anonymous_id).or_else(|| non_empty(&self.user_id))
    }

    /// Fills the fields the edge owns: a UUIDv7 `messageId` when the client sent none, and the
    /// settled times (see [`EdgeTimes::settle`]). `batch_sent_at` applies when the event has no
    /// `sentAt` of its own.
    pub fn stamp(&mut self, received_at: DateTime<Utc>, batch_sent_at: Option<DateTime<Utc>>) {
        if self.message_id.is_none() {
            self.message_id = Some(uuid::Uuid::now_v7().to_string());
        }
        let times =
            EdgeTimes::settle(received_at, self.timestamp, self.original_timestamp, self.sent_at.or(batch_sent_at));
        self.received_at = Some(times.received_at);
        self.original_timestamp = times.original_timestamp;
        self.sent_at = times.sent_at;
        self.timestamp = Some(times.timestamp);
    }

    /// The event's `context`, created empty when absent.
    pub fn context_mut(&mut self) -> &mut Map<String, Value> {
        self.context.get_or_insert_with(Map::new)
    }

    /// The wire form written to Kafka: the event as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|e| unreachable!("an Event always serializes: {e}"))
    }
}

type CheckedTimes = [Option<DateTime<Utc>>; 4];

/// Checks every typed field by reference, so a rejected event can be dead-lettered as sent.
fn check(map: &Map<String, Value>, endpoint_type: Option<EventType>) -> Result<(EventType, CheckedTimes), EventError> {
    let kind = match (map.get("type"), endpoint_type) {
        (None | Some(Value::Null), Some(expected)) => expected,
        (None | Some(Value::Null), None) => return Err(EventError::MissingField("type")),
        (Some(Value::String(name)), expected) => {
            let kind = EventType::parse(name).ok_or_else(|| EventError::UnknownType(name.clone()))?;
            match expected {
                Some(expected) if expected != kind => {
                    return Err(EventError::TypeMismatch { expected: expected.as_str(), found: name.clone() })
                }
                _ => kind,
            }
        }
        (Some(other), _) => return Err(wrong_type("type", "a string", other)),
    };
    for field in STRING_FIELDS {
        if let Some(v) = map.get(field).filter(|v| !v.is_null() && !v.is_string()) {
            return Err(wrong_type(field, "a string", v));
        }
    }
    // Several SDKs send numeric user ids; they are kept as their decimal text.
    for field in ID_FIELDS {
        if let Some(v) = map.get(field).filter(|v| !(v.is_null() || v.is_string() || v.is_i64() || v.is_u64())) {
            return Err(wrong_type(field, "a string", v));
        }
    }
    for field in OBJECT_FIELDS {
        if let Some(v) = map.get(field).filter(|v| !v.is_null() && !v.is_object()) {
            return Err(wrong_type(field, "an object", v));
        }
    }
    let mut times = [None; 4];
    for (slot, field) in times.iter_mut().zip(TIME_FIELDS) {
        *slot = match map.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(parse_timestamp(text).ok_or_else(|| EventError::BadTimestamp { field, value: text.clone() })?)
            }
            Some(other) => return Err(wrong_type(field, "a string", other)),
        };
    }
    let present = |field: &str| match map.get(field) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    };
    if !present("anonymousId") && !present("userId") {
        return Err(EventError::MissingIdentity);
    }
    match kind.required_field() {
        Some(field) if !present(field) => Err(EventError::MissingField(field)),
        _ => Ok((kind, times)),
    }
}

fn wrong_type(field: &'static str, expected: &'static str, got: &Value) -> EventError {
    EventError::WrongType { field, expected, got: json_type_name(got) }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
