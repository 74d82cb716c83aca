//! The zero-copy event path: a request body scanned once (validated as JSON, and each
//! event's members found as spans of the client's bytes), each event validated from those
//! spans, and written out by copying the client's bytes and splicing in only what the edge
//! adds or changes. No value tree is built. The output is the same event as
//! [`Event::to_json`](crate::Event::to_json) writes (as JSON, not as bytes: untouched fields
//! keep the client's key order and number formatting).

mod append;
pub(crate) mod check;
pub(crate) mod raw;
pub(crate) mod scan;
mod write;

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::error::EventError;
use crate::event::{Event, EventType};
use crate::payload::{PayloadError, Rejected};
use crate::time::{parse_timestamp, EdgeTimes};
use crate::Connection;
use check::{Field, Kind, Known};
use raw::{key_name, Element, Member};
use scan::Root;

pub use append::append_member;
pub(crate) use append::close_with_member;

/// The events of one request, borrowed from the client's bytes.
#[derive(Debug, Default)]
pub struct RawEnvelope<'r> {
    items: Vec<Result<RawItem<'r>, EventError>>,
    /// The batch-level `sentAt`, used for events without their own.
    pub sent_at: Option<DateTime<Utc>>,
    /// The write key found in the body: the batch's `writeKey`, else the first event's.
    pub write_key: Option<String>,
    context: Option<SharedObject<'r>>,
    integrations: Option<SharedObject<'r>>,
}

impl RawEnvelope<'_> {
    /// How many events the body holds, valid or not.
    pub fn event_count(&self) -> usize {
        self.items.len()
    }
}

#[derive(Debug)]
struct RawItem<'r> {
    raw: &'r [u8],
    /// The members as sent, when the item is an object, and the fields validation reads.
    members: Vec<Member<'r>>,
    known: Known<'r>,
}

impl<'r> RawItem<'r> {
    /// `text` is the scanned document the element is part of.
    fn new(text: &'r str, element: Element<'r>) -> Self {
        let known = Known::new(text, &element.members);
        Self { raw: element.span, members: element.members, known }
    }
}

/// A batch-level `context` or `integrations`: its members as sent.
#[derive(Debug)]
pub(crate) struct SharedObject<'r> {
    pub members: Vec<Member<'r>>,
}

/// What the batch says about all of its events, needed to write each one.
#[derive(Debug, Default)]
pub struct BatchFields<'r> {
    pub(crate) sent_at: Option<DateTime<Utc>>,
    pub(crate) context: Option<SharedObject<'r>>,
    pub(crate) integrations: Option<SharedObject<'r>>,
}

fn invalid(error: scan::ScanError) -> PayloadError {
    PayloadError::InvalidJson(error.to_string())
}

/// The non-blank lines of an NDJSON body.
fn ndjson_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|b| *b == b'\n').filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
}

fn invalid_or_too_many(error: scan::ScanError, max_events: usize) -> PayloadError {
    if error.is_too_many_events() {
        PayloadError::TooManyEvents { limit: max_events }
    } else {
        invalid(error)
    }
}

fn bad_shape(message: String) -> PayloadError {
    PayloadError::BadShape(message)
}

/// The member `name` of `members` (which hold each key once).
fn member<'m, 'r>(members: &'m mut [Member<'r>], name: &str) -> Option<&'m mut Member<'r>> {
    members.iter_mut().find(|m| m.name == name)
}

impl<'r> RawEnvelope<'r> {
    /// A Segment batch: `{"batch": [...], "sentAt": ..., "writeKey": ..., "context": ...}`.
    pub fn from_batch(raw: &'r [u8]) -> Result<Self, PayloadError> {
        Self::from_batch_capped(raw, usize::MAX)
    }

    /// As [`Self::from_batch`], refusing a `batch` of more than `max_events` events while it
    /// is scanned, before their members are recorded.
    pub fn from_batch_capped(raw: &'r [u8], max_events: usize) -> Result<Self, PayloadError> {
        let document =
            scan::document_capped(raw, Root::Batch, max_events).map_err(|e| invalid_or_too_many(e, max_events))?;
        let kind = Kind::of(document.span);
        if kind != Kind::Object {
            return Err(bad_shape(format!(
                "batch body must be a JSON object with a `batch` array, got {}",
                kind.type_name()
            )));
        }
        let mut members = document.members;
        let items = match member(&mut members, "batch").map(|m| Kind::of(m.value)) {
            Some(Kind::Array) => {
                document.elements.unwrap_or_default().into_iter().map(|e| Ok(RawItem::new(document.text, e))).collect()
            }
            Some(other) => {
                return Err(bad_shape(format!("field `batch` must be an array, got {}", other.type_name())));
            }
            None => return Err(bad_shape("missing required field `batch`".into())),
        };
        let sent_at = match member(&mut members, "sentAt").map(|m| (Kind::of(m.value), m.value)) {
            None | Some((Kind::Null, _)) => None,
            Some((Kind::String, value)) => {
                let text = key_name(value);
                Some(parse_timestamp(&text).ok_or_else(|| {
                    bad_shape(format!("field `sentAt` is not an ISO-8601 timestamp: {:?}", text.as_ref()))
                })?)
            }
            Some((other, _)) => {
                return Err(bad_shape(format!("field `sentAt` must be a string, got {}", other.type_name())))
            }
        };
        let mut envelope = Self::from_items(items);
        envelope.sent_at = sent_at;
        if let Some(key) = member(&mut members, "writeKey").filter(|m| Kind::of(m.value) == Kind::String) {
            envelope.write_key = Some(key_name(key.value).into_owned());
        }
        let mut shared = |field: &str| match member(&mut members, field) {
            Some(m) if Kind::of(m.value) == Kind::Object => {
                Some(SharedObject { members: std::mem::take(&mut m.members) })
            }
            _ => None,
        };
        envelope.context = shared("context");
        envelope.integrations = shared("integrations");
        Ok(envelope)
    }

    /// A single event, as posted to `/v1/track` and the like.
    pub fn from_single(raw: &'r [u8]) -> Result<Self, PayloadError> {
        let document = scan::document(raw, Root::Event).map_err(invalid)?;
        let element = Element { span: document.span, members: document.members };
        Ok(Self::from_items(vec![Ok(RawItem::new(document.text, element))]))
    }

    /// `/v1/events`: a JSON array of events, or one event object.
    pub fn from_array_or_single(raw: &'r [u8]) -> Result<Self, PayloadError> {
        Self::from_array_or_single_capped(raw, usize::MAX)
    }

    /// As [`Self::from_array_or_single`], refusing an array of more than `max_events` events
    /// while it is scanned.
    pub fn from_array_or_single_capped(raw: &'r [u8], max_events: usize) -> Result<Self, PayloadError> {
        let document =
            scan::document_capped(raw, Root::Events, max_events).map_err(|e| invalid_or_too_many(e, max_events))?;
        let items = match document.elements {
            Some(elements) => elements.into_iter().map(|e| Ok(RawItem::new(document.text, e))).collect(),
            None => vec![Ok(RawItem::new(document.text, Element { span: document.span, members: document.members }))],
        };
        Ok(Self::from_items(items))
    }

    /// Newline-delimited JSON: one event per non-blank line. A bad line rejects only itself.
    pub fn from_ndjson(raw: &'r [u8]) -> Self {
        Self::ndjson_items(ndjson_lines(raw))
    }

    /// As [`Self::from_ndjson`], refusing a body of more than `max_events` lines before any
    /// line is scanned: a line costs its item, its member list and perhaps a rejection entry.
    /// The body is split once; the lines found are kept for the scan.
    pub fn from_ndjson_capped(raw: &'r [u8], max_events: usize) -> Result<Self, PayloadError> {
        let lines: Vec<&[u8]> = ndjson_lines(raw).take(max_events.saturating_add(1)).collect();
        if lines.len() > max_events {
            return Err(PayloadError::TooManyEvents { limit: max_events });
        }
        Ok(Self::ndjson_items(lines))
    }

    fn ndjson_items(lines: impl IntoIterator<Item = &'r [u8]>) -> Self {
        let items = lines
            .into_iter()
            .map(|line| {
                // Worded as the owned path words it: the payload error inside the event error.
                let document =
                    scan::document(line, Root::Event).map_err(|e| EventError::InvalidJson(invalid(e).to_string()))?;
                Ok(RawItem::new(document.text, Element { span: document.span, members: document.members }))
            })
            .collect();
        Self::from_items(items)
    }

    fn from_items(items: Vec<Result<RawItem<'r>, EventError>>) -> Self {
        let write_key = items.iter().find_map(|item| {
            let item = item.as_ref().ok()?;
            item.known.string(Field::WriteKey).map(Cow::into_owned)
        });
        Self { items, write_key, ..Self::default() }
    }

    /// Validates every item; one entry per item, in order, plus what the batch says about all.
    pub fn into_events(
        self,
        endpoint_type: Option<EventType>,
    ) -> (BatchFields<'r>, Vec<Result<CheckedEvent<'r>, Rejected>>) {
        let batch = BatchFields { sent_at: self.sent_at, context: self.context, integrations: self.integrations };
        let events = self
            .items
            .into_iter()
            .map(|item| {
                let item = item.map_err(|error| Rejected { error, payload: serde_json::Value::Null })?;
                let RawItem { raw, mut members, known } = item;
                let rejected = |error| Rejected { error, payload: serde_json::from_slice(raw).unwrap_or_default() };
                let kind = Kind::of(raw);
                if kind != Kind::Object {
                    return Err(rejected(EventError::NotAnObject(kind.type_name())));
                }
                let (kind, times) = check::check(&known, endpoint_type).map_err(rejected)?;
                let mut nested = |name: &str| member(&mut members, name).map(|m| std::mem::take(&mut m.members));
                let context = nested("context").unwrap_or_default();
                let integrations = nested("integrations").unwrap_or_default();
                Ok(CheckedEvent { raw, members, context, integrations, known, kind, times })
            })
            .collect();
        (batch, events)
    }
}

/// One valid event, still borrowed: ready to be deduplicated and spliced.
#[derive(Debug)]
pub struct CheckedEvent<'r> {
    raw: &'r [u8],
    /// The event's members as sent, and those of its `context` and `integrations`.
    members: Vec<Member<'r>>,
    context: Vec<Member<'r>>,
    integrations: Vec<Member<'r>>,
    known: Known<'r>,
    kind: EventType,
    times: check::CheckedTimes,
}

/// A JSON text read as simd-json reads it (and so the owned path), into serde_json's types.
fn owned_json<T: serde::de::DeserializeOwned>(span: &[u8]) -> Option<T> {
    simd_json::serde::from_slice(&mut span.to_vec()).ok()
}

impl<'r> CheckedEvent<'r> {
    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// The client's `messageId`, when it sent a non-empty one (a numeric id as its decimal
    /// text).
    pub fn message_id(&self) -> Option<Cow<'r, str>> {
        self.known.id(Field::MessageId).filter(|id| !id.is_empty())
    }

    /// `anonymousId` as text (a numeric id as its decimal text).
    pub fn anonymous_id(&self) -> Option<Cow<'r, str>> {
        self.known.id(Field::AnonymousId)
    }

    /// `userId` as text (a numeric id as its decimal text).
    pub fn user_id(&self) -> Option<Cow<'r, str>> {
        self.known.id(Field::UserId)
    }

    /// The track event's name (`event`), when it is a string.
    pub fn event_name(&self) -> Option<Cow<'r, str>> {
        self.known.string(Field::Event)
    }

    /// The event as the client sent it (without the write key, and before the edge adds
    /// its fields or merges a batch's `context`), as an owned JSON value: what a tracking
    /// plan is checked against. It costs a parse of the event, so only sources with a
    /// plan ask for it.
    pub fn to_value(&self) -> serde_json::Value {
        let mut value: serde_json::Value = owned_json(self.raw).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut value {
            map.shift_remove("writeKey");
        }
        value
    }

    /// What topic routing reads, as an owned [`Event`]: the type, event and page names, the
    /// visitor's ids (`anonymousId`, `userId`), `properties` (only `with_properties`, as they
    /// cost the most to build) and the settled `timestamp`. Every other field is left empty,
    /// `messageId`, `groupId` and `previousId` included (each an allocation per event that no
    /// rule reads), so this is for routing rules only; the event itself is [`Self::splice`].
    pub fn routing_view(&self, batch: &BatchFields<'_>, received_at: DateTime<Utc>, with_properties: bool) -> Event {
        let text = |field| self.known.string(field).map(Cow::into_owned);
        let id = |field| self.known.id(field).map(Cow::into_owned);
        let properties = match self.known.get(Field::Properties).filter(|_| with_properties) {
            Some(span) if Kind::of(span) == Kind::Object => owned_json(span),
            _ => None,
        };
        let [timestamp, original, sent_at, _] = self.times;
        let settled = EdgeTimes::settle(received_at, timestamp, original, sent_at.or(batch.sent_at));
        Event {
            kind: self.kind,
            message_id: None,
            anonymous_id: id(Field::AnonymousId),
            user_id: id(Field::UserId),
            event: text(Field::Event),
            name: text(Field::Name),
            group_id: None,
            previous_id: None,
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
    pub fn splice(&self, batch: &BatchFields<'_>, received_at: DateTime<Utc>, connection: &Connection<'_>) -> Vec<u8> {
        write::splice(self, batch, received_at, connection)
    }
}

#[cfg(test)]
mod tests;
