//! The zero-copy event path: a request body parsed once into simd-json borrowed values,
//! validated in place, and each event written out by copying the client's bytes and splicing
//! in only what the edge adds or changes. The output is the same event as
//! [`Event::to_json`](crate::Event::to_json) writes (as JSON, not as bytes: untouched fields
//! keep the client's key order and number formatting).

mod append;
pub(crate) mod check;
mod raw;
mod write;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use simd_json::borrowed::{Object, Value};

use crate::error::EventError;
use crate::event::{Event, EventType};
use crate::payload::{PayloadError, Rejected};
use crate::time::{parse_timestamp, EdgeTimes};
use crate::Connection;
use check::{is_null, type_name};
use raw::Member;

pub use append::append_member;

/// The events of one request, borrowed: `'r` from the client's bytes, `'s` from the scratch
/// copy simd-json parsed (and scrambled).
#[derive(Debug, Default)]
pub struct RawEnvelope<'r, 's> {
    items: Vec<Result<RawItem<'r, 's>, EventError>>,
    /// The batch-level `sentAt`, used for events without their own.
    pub sent_at: Option<DateTime<Utc>>,
    /// The write key found in the body: the batch's `writeKey`, else the first event's.
    pub write_key: Option<String>,
    context: Option<SharedObject<'r, 's>>,
    integrations: Option<SharedObject<'r, 's>>,
}

#[derive(Debug)]
struct RawItem<'r, 's> {
    value: Value<'s>,
    raw: &'r [u8],
    /// The members as sent, when the item is an object.
    members: Vec<Member<'r>>,
}

impl<'r, 's> RawItem<'r, 's> {
    fn new(raw: &'r [u8], value: Value<'s>) -> Self {
        let members = if matches!(value, Value::Object(_)) { raw::event_members(raw) } else { Vec::new() };
        Self::scanned(raw::Element { span: raw, members }, value)
    }

    /// An item whose members were found while scanning its array.
    fn scanned(element: raw::Element<'r>, mut value: Value<'s>) -> Self {
        if let Value::Object(map) = &mut value {
            last_wins(map, &element.members);
        }
        Self { value, raw: element.span, members: element.members }
    }
}

/// simd-json keeps every copy of a repeated key and finds the first; serde_json, and so the
/// owned path, keeps the last. Makes `map` agree with `members` (which keep the last).
fn last_wins(map: &mut Object<'_>, members: &[Member<'_>]) {
    if map.len() == members.len() {
        return;
    }
    for member in members {
        if map.iter().filter(|(key, _)| **key == member.name).count() > 1 {
            while map.remove(member.name.as_ref()).is_some() {}
            let mut copy = member.value.to_vec();
            let value = simd_json::to_borrowed_value(&mut copy).map(Value::into_static);
            if let Ok(value) = value {
                map.insert(Cow::Owned(member.name.to_string()), value);
            }
        }
    }
}

/// Whether a key occurs more than once (simd-json keeps every copy).
pub(crate) fn has_repeats(map: &Object<'_>) -> bool {
    let keys: Vec<&str> = map.keys().map(AsRef::as_ref).collect();
    (0..keys.len()).any(|i| keys[i + 1..].contains(&keys[i]))
}

/// The members of the object member `name` (scanned with the event's, and moved out of its
/// member), with its map made to agree with them.
fn object_members<'r>(map: &mut Object<'_>, members: &mut [Member<'r>], name: &str) -> Vec<Member<'r>> {
    match (map.get_mut(name), members.iter_mut().find(|m| m.name == name)) {
        (Some(Value::Object(object)), Some(member)) => {
            let members = std::mem::take(&mut member.members);
            last_wins(object, &members);
            members
        }
        _ => Vec::new(),
    }
}

/// A batch-level `context` or `integrations`: its members as sent, and their values.
#[derive(Debug)]
pub(crate) struct SharedObject<'r, 's> {
    pub members: Vec<Member<'r>>,
    pub value: Box<Object<'s>>,
}

/// What the batch says about all of its events, needed to write each one.
#[derive(Debug, Default)]
pub struct BatchFields<'r, 's> {
    pub(crate) sent_at: Option<DateTime<Utc>>,
    pub(crate) context: Option<SharedObject<'r, 's>>,
    pub(crate) integrations: Option<SharedObject<'r, 's>>,
}

fn parse<'s>(raw: &[u8], scratch: &'s mut Vec<u8>) -> Result<Value<'s>, PayloadError> {
    scratch.clear();
    scratch.extend_from_slice(raw);
    simd_json::to_borrowed_value(scratch).map_err(|e| PayloadError::InvalidJson(e.to_string()))
}

fn bad_shape(message: String) -> PayloadError {
    PayloadError::BadShape(message)
}

impl<'r, 's> RawEnvelope<'r, 's> {
    /// A Segment batch: `{"batch": [...], "sentAt": ..., "writeKey": ..., "context": ...}`.
    /// `scratch` receives a copy of `raw` for simd-json to parse.
    pub fn from_batch(raw: &'r [u8], scratch: &'s mut Vec<u8>) -> Result<Self, PayloadError> {
        let mut map = match parse(raw, scratch)? {
            Value::Object(map) => map,
            other => {
                return Err(bad_shape(format!(
                    "batch body must be a JSON object with a `batch` array, got {}",
                    type_name(&other)
                )))
            }
        };
        let (members, elements) = raw::batch(raw);
        last_wins(&mut map, &members);
        let mut members = members;
        let items = match map.remove("batch") {
            Some(Value::Array(items)) => {
                elements.into_iter().zip(*items).map(|(element, value)| Ok(RawItem::scanned(element, value))).collect()
            }
            Some(other) => {
                return Err(bad_shape(format!("field `batch` must be an array, got {}", type_name(&other))));
            }
            None => return Err(bad_shape("missing required field `batch`".into())),
        };
        let sent_at = match map.remove("sentAt") {
            None => None,
            Some(v) if is_null(&v) => None,
            Some(Value::String(text)) => Some(parse_timestamp(&text).ok_or_else(|| {
                bad_shape(format!("field `sentAt` is not an ISO-8601 timestamp: {:?}", text.as_ref()))
            })?),
            Some(other) => {
                return Err(bad_shape(format!("field `sentAt` must be a string, got {}", type_name(&other))))
            }
        };
        let mut envelope = Self::from_items(items);
        envelope.sent_at = sent_at;
        if let Some(Value::String(key)) = map.remove("writeKey") {
            envelope.write_key = Some(key.into_owned());
        }
        let mut shared = |field: &str| match (map.remove(field), members.iter_mut().find(|m| m.name == field)) {
            (Some(Value::Object(mut value)), Some(m)) => {
                let members = std::mem::take(&mut m.members);
                last_wins(&mut value, &members);
                Some(SharedObject { members, value })
            }
            _ => None,
        };
        envelope.context = shared("context");
        envelope.integrations = shared("integrations");
        Ok(envelope)
    }

    /// A single event, as posted to `/v1/track` and the like.
    pub fn from_single(raw: &'r [u8], scratch: &'s mut Vec<u8>) -> Result<Self, PayloadError> {
        let value = parse(raw, scratch)?;
        Ok(Self::from_items(vec![Ok(RawItem::new(raw::trim(raw), value))]))
    }

    /// `/v1/events`: a JSON array of events, or one event object.
    pub fn from_array_or_single(raw: &'r [u8], scratch: &'s mut Vec<u8>) -> Result<Self, PayloadError> {
        match parse(raw, scratch)? {
            Value::Array(items) => {
                let elements = raw::elements(raw);
                let items =
                    elements.into_iter().zip(*items).map(|(element, value)| Ok(RawItem::scanned(element, value)));
                Ok(Self::from_items(items.collect()))
            }
            value => Ok(Self::from_items(vec![Ok(RawItem::new(raw::trim(raw), value))])),
        }
    }

    /// Newline-delimited JSON: one event per non-blank line. A bad line rejects only itself.
    pub fn from_ndjson(raw: &'r [u8], scratch: &'s mut Vec<u8>) -> Self {
        scratch.clear();
        scratch.extend_from_slice(raw);
        let items = raw
            .split(|b| *b == b'\n')
            .zip(scratch.split_mut(|b| *b == b'\n'))
            .filter(|(line, _)| line.iter().any(|b| !b.is_ascii_whitespace()))
            .map(|(line, copy)| {
                // Worded as the owned path words it: the payload error inside the event error.
                let invalid = |e: simd_json::Error| PayloadError::InvalidJson(e.to_string()).to_string();
                let value = simd_json::to_borrowed_value(copy).map_err(|e| EventError::InvalidJson(invalid(e)))?;
                Ok(RawItem::new(raw::trim(line), value))
            })
            .collect();
        Self::from_items(items)
    }

    fn from_items(items: Vec<Result<RawItem<'r, 's>, EventError>>) -> Self {
        let write_key = items.iter().find_map(|item| match item {
            Ok(RawItem { value: Value::Object(event), .. }) => match event.get("writeKey") {
                Some(Value::String(key)) => Some(key.to_string()),
                _ => None,
            },
            _ => None,
        });
        Self { items, write_key, ..Self::default() }
    }

    /// Validates every item; one entry per item, in order, plus what the batch says about all.
    #[allow(clippy::type_complexity)]
    pub fn into_events(
        self,
        endpoint_type: Option<EventType>,
    ) -> (BatchFields<'r, 's>, Vec<Result<CheckedEvent<'r, 's>, Rejected>>) {
        let batch = BatchFields { sent_at: self.sent_at, context: self.context, integrations: self.integrations };
        let events = self
            .items
            .into_iter()
            .map(|item| {
                let item = item.map_err(|error| Rejected { error, payload: serde_json::Value::Null })?;
                let RawItem { raw, value, mut members } = item;
                let rejected = |error| Rejected { error, payload: serde_json::from_slice(raw).unwrap_or_default() };
                let Value::Object(mut map) = value else {
                    return Err(rejected(EventError::NotAnObject(type_name(&value))));
                };
                let (kind, times) = check::check(&map, endpoint_type).map_err(rejected)?;
                let context = object_members(&mut map, &mut members, "context");
                let integrations = object_members(&mut map, &mut members, "integrations");
                Ok(CheckedEvent { members, context, integrations, map, kind, times })
            })
            .collect();
        (batch, events)
    }
}

/// One valid event, still borrowed: ready to be deduplicated and spliced.
#[derive(Debug)]
pub struct CheckedEvent<'r, 's> {
    /// The event's members as sent, and those of its `context` and `integrations`.
    members: Vec<Member<'r>>,
    context: Vec<Member<'r>>,
    integrations: Vec<Member<'r>>,
    map: Box<Object<'s>>,
    kind: EventType,
    times: check::CheckedTimes,
}

impl CheckedEvent<'_, '_> {
    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// The client's `messageId`, when it sent a non-empty one (a numeric id as its decimal
    /// text).
    pub fn message_id(&self) -> Option<Cow<'_, str>> {
        self.map.get("messageId").and_then(check::id_text).filter(|id| !id.is_empty())
    }

    /// `anonymousId` as text (a numeric id as its decimal text).
    pub fn anonymous_id(&self) -> Option<Cow<'_, str>> {
        self.map.get("anonymousId").and_then(check::id_text)
    }

    /// `userId` as text (a numeric id as its decimal text).
    pub fn user_id(&self) -> Option<Cow<'_, str>> {
        self.map.get("userId").and_then(check::id_text)
    }

    /// The track event's name (`event`), when it is a string.
    pub fn event_name(&self) -> Option<&str> {
        match self.map.get("event") {
            Some(Value::String(name)) => Some(name.as_ref()),
            _ => None,
        }
    }

    /// The event as the client sent it (without the write key, and before the edge adds
    /// its fields or merges a batch's `context`), as an owned JSON value: what a tracking
    /// plan is checked against. It costs a copy of every member, so only sources with a
    /// plan ask for it.
    pub fn to_value(&self) -> serde_json::Value {
        let members = self
            .map
            .iter()
            .filter(|(key, _)| key.as_ref() != "writeKey")
            .map(|(key, value)| (key.to_string(), serde_json::to_value(value).unwrap_or_default()));
        serde_json::Value::Object(members.collect())
    }

    /// What topic routing reads, as an owned [`Event`]: the type, event and page names, the
    /// ids, `properties` (only `with_properties`, as they cost the most to build) and the
    /// settled `timestamp`. Every other field is left empty, so this is for routing rules
    /// only; the event itself is [`Self::splice`].
    pub fn routing_view(
        &self,
        batch: &BatchFields<'_, '_>,
        received_at: DateTime<Utc>,
        with_properties: bool,
    ) -> Event {
        let text = |field: &str| match self.map.get(field) {
            Some(Value::String(s)) => Some(s.to_string()),
            _ => None,
        };
        let id = |field: &str| self.map.get(field).and_then(check::id_text).map(Cow::into_owned);
        let properties = match self.map.get("properties").filter(|_| with_properties) {
            // A repeated key (rare) is read from the client's bytes, as serde_json reads it.
            Some(Value::Object(map)) if has_repeats(map) => {
                let member = self.members.iter().find(|m| m.name == "properties");
                member.and_then(|m| serde_json::from_slice(m.value).ok())
            }
            Some(value @ Value::Object(_)) => match serde_json::to_value(value) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => None,
            },
            _ => None,
        };
        let [timestamp, original, sent_at, _] = self.times;
        let settled = EdgeTimes::settle(received_at, timestamp, original, sent_at.or(batch.sent_at));
        Event {
            kind: self.kind,
            message_id: self.message_id().map(Cow::into_owned),
            anonymous_id: id("anonymousId"),
            user_id: id("userId"),
            event: text("event"),
            name: text("name"),
            group_id: id("groupId"),
            previous_id: id("previousId"),
            properties,
            traits: None,
            context: None,
            integrations: None,
            timestamp: Some(settled.timestamp),
            original_timestamp: settled.original_timestamp,
            sent_at: settled.sent_at,
            received_at: Some(received_at),
            extra: serde_json::Map::new(),
        }
    }

    /// The wire form: the client's bytes with the edge's fields spliced in, the write key
    /// removed and the batch's `sentAt`, `context` and `integrations` merged under the event's.
    pub fn splice(
        &self,
        batch: &BatchFields<'_, '_>,
        received_at: DateTime<Utc>,
        connection: &Connection<'_>,
    ) -> Vec<u8> {
        write::splice(self, batch, received_at, connection)
    }
}

#[cfg(test)]
mod tests;
