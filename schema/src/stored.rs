//! An event read back from a topic the gateway wrote, borrowed: parsed once into simd-json
//! values, validated by the rules [`Event::from_slice`] applies, and read in place, so that a
//! consumer (the enricher) builds no owned tree for the fields it only looks at.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use simd_json::borrowed::{Object, Value};

use crate::error::EventError;
use crate::event::{Event, EventType};
use crate::splice::check;

/// simd-json's borrowed JSON value, the type [`StoredEvent`]'s fields are read as.
pub use simd_json::borrowed::{Object as BorrowedObject, Value as BorrowedValue};
/// simd-json's scalar node (`null`, booleans, numbers) inside a [`BorrowedValue`].
pub use simd_json::StaticNode;

/// Buffers a [`StoredEvent`] borrows from: simd-json parses in place, so it needs a copy of
/// the stored bytes. Reused from event to event, it saves an allocation per event.
#[derive(Debug, Default)]
pub struct StoredScratch {
    parsed: Vec<u8>,
    /// The event rewritten by serde_json, for the rare event with a repeated key.
    normalized: Vec<u8>,
}

/// One valid stored event, borrowed from its scratch copy.
#[derive(Debug)]
pub struct StoredEvent<'s> {
    map: Box<Object<'s>>,
    /// Address of the parsed copy of the stored bytes, where simd-json leaves each string at
    /// its stored position; `None` when the event was rewritten (a repeated key).
    parsed_at: Option<usize>,
    kind: EventType,
    times: check::CheckedTimes,
}

impl<'s> StoredEvent<'s> {
    /// Parses and validates `bytes`. Errors are [`Event::from_slice`]'s, word for word: any
    /// event this rejects is handed to it for the error.
    pub fn parse(bytes: &[u8], scratch: &'s mut StoredScratch) -> Result<Self, EventError> {
        let StoredScratch { parsed, normalized } = scratch;
        parsed.clear();
        parsed.extend_from_slice(bytes);
        let parsed_start = parsed.as_ptr().addr();
        let first = simd_json::to_borrowed_value(parsed).ok();
        let mut parsed_at = Some(parsed_start);
        let value = match first {
            Some(value) if !repeats_where_read(&value) => value,
            // simd-json keeps every copy of a repeated key and reads the first; the owned
            // `Event` (serde_json) keeps the last. Rewriting through serde_json agrees with it.
            Some(_) => {
                parsed_at = None;
                let rewritten = serde_json::from_slice::<serde_json::Value>(bytes).map(|v| v.to_string());
                normalized.clear();
                normalized.extend_from_slice(rewritten.as_deref().unwrap_or_default().as_bytes());
                simd_json::to_borrowed_value(normalized).map_err(|_| owned_error(bytes))?
            }
            None => return Err(owned_error(bytes)),
        };
        let Value::Object(map) = value else { return Err(owned_error(bytes)) };
        let (kind, times) = check::check(map.as_ref(), None).map_err(|_| owned_error(bytes))?;
        Ok(Self { map, parsed_at, kind, times })
    }

    /// `stored`, the bytes this event was parsed from, with the member `name` added as
    /// `value` (its JSON text) and `context.ip`, where it is a string, set to `context_ip`:
    /// what [`crate::append_member`] writes, found from the parse rather than by scanning the
    /// bytes again. Everything else is copied as stored, whitespace included. `None` when the
    /// event already has a member `name`.
    pub fn append_member(&self, stored: &[u8], name: &str, value: &[u8], context_ip: Option<&str>) -> Option<Vec<u8>> {
        if self.map.contains_key(name) {
            return None;
        }
        let start = stored.iter().position(|b| !b.is_ascii_whitespace());
        let end = stored.iter().rposition(|b| !b.is_ascii_whitespace());
        let (Some(start), Some(end), Some(parsed_at)) = (start, end, self.parsed_at) else {
            return crate::append_member(stored, name, value, context_ip);
        };
        let stored_ip = self.object("context").and_then(|c| c.get("ip"));
        let ip_span = match (context_ip, stored_ip) {
            (Some(ip), Some(Value::String(old))) => match string_span(stored, parsed_at, old) {
                Some(span) => Some((span, ip)),
                None => return crate::append_member(stored, name, value, context_ip),
            },
            _ => None,
        };
        if stored[end] != b'}' || self.map.is_empty() {
            return crate::append_member(stored, name, value, context_ip);
        }
        let mut out = Vec::with_capacity(end - start + value.len() + name.len() + 24);
        let mut copied = start;
        if let Some(((from, to), ip)) = ip_span {
            out.extend_from_slice(&stored[copied..from]);
            serde_json::to_writer(&mut out, ip).ok()?;
            copied = to;
        }
        out.extend_from_slice(&stored[copied..end]);
        out.push(b',');
        serde_json::to_writer(&mut out, name).ok()?;
        out.push(b':');
        out.extend_from_slice(value);
        out.push(b'}');
        Some(out)
    }

    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// A top-level member, as stored.
    pub fn get(&self, name: &str) -> Option<&Value<'s>> {
        self.map.get(name)
    }

    /// A top-level member that is an object (`properties`, `context`, ...).
    pub fn object(&self, name: &str) -> Option<&Object<'s>> {
        match self.map.get(name) {
            Some(Value::Object(object)) => Some(object),
            _ => None,
        }
    }

    /// A top-level member that is a string.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.map.get(name) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        }
    }

    /// `messageId` when non-empty, a numeric id as its decimal text (as [`Event::message_id`]).
    pub fn message_id(&self) -> Option<Cow<'_, str>> {
        self.map.get("messageId").and_then(check::value_id_text).filter(|id| !id.is_empty())
    }

    /// The visitor, as [`Event::visitor_key`] names it: `anonymousId`, else `userId`.
    pub fn visitor_key(&self) -> Option<Cow<'_, str>> {
        let id = |field: &str| self.map.get(field).and_then(check::value_id_text).filter(|id| !id.is_empty());
        id("anonymousId").or_else(|| id("userId"))
    }

    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.times[0]
    }

    pub fn received_at(&self) -> Option<DateTime<Utc>> {
        self.times[3]
    }
}

/// What the owned path says about bytes the borrowed path would not take.
fn owned_error(bytes: &[u8]) -> EventError {
    match Event::from_slice(bytes) {
        Err(error) => error,
        // Not expected: both paths share their rules. Said as an error rather than guessed at.
        Ok(_) => EventError::InvalidJson("the event reads differently as simd-json and serde_json values".into()),
    }
}

/// Where `text`, a string simd-json parsed from the copy at `parsed_at`, sits in `stored`,
/// quotes included; `None` unless it is there verbatim (a string with escapes is not).
fn string_span(stored: &[u8], parsed_at: usize, text: &str) -> Option<(usize, usize)> {
    let at = text.as_ptr().addr().checked_sub(parsed_at)?;
    let end = at.checked_add(text.len())?;
    let verbatim = at >= 1
        && stored.get(at - 1) == Some(&b'"')
        && stored.get(at..end) == Some(text.as_bytes())
        && stored.get(end) == Some(&b'"');
    verbatim.then_some((at - 1, end + 1))
}

/// Whether an object's keys repeat. Each key's length and its first, middle and last bytes
/// are packed into one word on the stack (`category` and `currency` differ only in the
/// middle); only keys whose words match are compared as text.
fn keys_repeat(map: &Object<'_>) -> bool {
    const SMALL: usize = 32;
    if map.len() < 2 {
        return false;
    }
    if map.len() > SMALL {
        let keys: Vec<&str> = map.keys().map(AsRef::as_ref).collect();
        return (0..keys.len()).any(|i| keys[i + 1..].contains(&keys[i]));
    }
    let mut signs = [0u64; SMALL];
    for (sign, key) in signs.iter_mut().zip(map.keys()) {
        let bytes = key.as_bytes();
        let byte = |at: usize| u64::from(bytes.get(at).copied().unwrap_or(0));
        *sign =
            (bytes.len() as u64) << 24 | byte(0) << 16 | byte(bytes.len() / 2) << 8 | byte(bytes.len().wrapping_sub(1));
    }
    let signs = &signs[..map.len()];
    let key = |index: usize| map.keys().nth(index);
    (0..signs.len()).any(|i| (i + 1..signs.len()).any(|j| signs[i] == signs[j] && key(i) == key(j)))
}

/// The objects below the top level that consumers read members of by key; each must read
/// the last copy of a repeated key, as serde_json does. Every other nested object is copied as
/// bytes and never looked into, so a repeat there changes nothing read, and checking the whole
/// tree for repeats (about a sixth of the enricher's CPU per event) is not needed. A consumer
/// that starts reading another nested object by key adds its path here.
const READ_OBJECTS: [&[&str]; 4] = [&["context"], &["context", "page"], &["context", "campaign"], &["properties"]];

/// Arrays whose object items consumers read by key: the products of an order.
const READ_ITEMS: [&[&str]; 1] = [&["properties", "products"]];

/// Whether the top level, or an object consumers read by key, has a key more than once.
fn repeats_where_read(value: &Value<'_>) -> bool {
    let Value::Object(top) = value else { return false };
    let object = |value: Option<&Value<'_>>| match value {
        Some(Value::Object(map)) => keys_repeat(map),
        _ => false,
    };
    keys_repeat(top)
        || READ_OBJECTS.iter().any(|path| object(member_at(top, path)))
        || READ_ITEMS.iter().any(|path| match member_at(top, path) {
            Some(Value::Array(items)) => items.iter().any(|item| object(Some(item))),
            _ => false,
        })
}

/// The member at `path`, object by object from `top`.
fn member_at<'a, 's>(top: &'a Object<'s>, path: &[&str]) -> Option<&'a Value<'s>> {
    let (last, parents) = path.split_last()?;
    let mut map = top;
    for name in parents {
        match map.get(*name) {
            Some(Value::Object(inner)) => map = inner,
            _ => return None,
        }
    }
    map.get(*last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T>(bytes: &[u8], f: impl FnOnce(&StoredEvent<'_>) -> T) -> Result<T, EventError> {
        let mut scratch = StoredScratch::default();
        StoredEvent::parse(bytes, &mut scratch).map(|event| f(&event))
    }

    #[test]
    fn reads_what_the_owned_event_reads() {
        let stored = br#"{"type":"track","event":"E","messageId":42,"anonymousId":"","userId":"u1","timestamp":"2026-01-01T00:00:00Z","receivedAt":"2026-01-01T00:00:01Z","context":{"ip":"1.2.3.4"}}"#;
        let owned = Event::from_slice(stored).expect("valid");
        let got = read(stored, |e| {
            (e.kind(), e.message_id().map(Cow::into_owned), e.visitor_key().map(Cow::into_owned), e.timestamp())
        });
        assert_eq!(
            got,
            Ok((owned.kind, owned.message_id.clone(), owned.visitor_key().map(str::to_owned), owned.timestamp))
        );
        assert_eq!(read(stored, |e| e.received_at()), Ok(owned.received_at));
        assert_eq!(read(stored, |e| e.str("event").map(str::to_owned)), Ok(Some("E".to_owned())));
        assert_eq!(read(stored, |e| e.object("context").map(|c| c.len())), Ok(Some(1)));
    }

    #[test]
    fn a_repeated_key_reads_its_last_copy_as_serde_does() {
        let stored = br#"{"type":"track","event":"A","userId":"u","properties":{"id":"x","id":"y"},"event":"B"}"#;
        let got = read(stored, |e| {
            let id = match e.object("properties").and_then(|p| p.get("id")) {
                Some(Value::String(id)) => Some(id.to_string()),
                _ => None,
            };
            (e.str("event").map(str::to_owned), id)
        });
        assert_eq!(got, Ok((Some("B".to_owned()), Some("y".to_owned()))));
    }

    /// Every object a consumer reads by key reads the last copy; a repeat anywhere else is
    /// left as stored, and the event is read in place (not rewritten).
    #[test]
    fn repeats_matter_only_where_read() {
        let text = |value: Option<&Value<'_>>| match value {
            Some(Value::String(text)) => Some(text.to_string()),
            _ => None,
        };
        let nested = |e: &StoredEvent<'_>, path: &[&str]| text(member_at(&e.map, path));
        let read_paths: [(&[u8], &[&str]); 4] = [
            (br#"{"type":"page","userId":"u","context":{"page":{"url":"a","url":"b"}}}"#, &["context", "page", "url"]),
            (
                br#"{"type":"page","userId":"u","context":{"campaign":{"name":"a","name":"b"}}}"#,
                &["context", "campaign", "name"],
            ),
            (br#"{"type":"page","userId":"u","context":{"ip":"a","ip":"b"}}"#, &["context", "ip"]),
            (br#"{"type":"track","event":"E","userId":"u","properties":{"x":"a","x":"b"}}"#, &["properties", "x"]),
        ];
        for (stored, path) in read_paths {
            assert_eq!(read(stored, |e| nested(e, path)), Ok(Some("b".to_owned())), "{path:?}");
        }
        let item = br#"{"type":"track","event":"E","userId":"u","properties":{"products":[{"product_id":"a","product_id":"b"}]}}"#;
        let product = read(item, |e| match member_at(&e.map, &["properties", "products"]) {
            Some(Value::Array(items)) => match items.first() {
                Some(Value::Object(item)) => text(item.get("product_id")),
                _ => None,
            },
            _ => None,
        });
        assert_eq!(product, Ok(Some("b".to_owned())));
        let unread = br#"{"type":"track","event":"E","userId":"u","properties":{"meta":{"k":1,"k":2}}}"#;
        assert_eq!(read(unread, |e| e.parsed_at.is_some()), Ok(true), "read in place, not rewritten");
    }

    /// The same event as [`crate::append_member`] writes, with or without an IP to replace,
    /// escaped or not, and with a repeated key.
    #[test]
    fn appends_as_the_byte_scan_does() {
        let cases: [&[u8]; 5] = [
            br#"{"type":"track","event":"E","userId":"u","context":{"ip":"203.0.113.7","locale":"en"},"n":1.50}"#,
            br#"{"type":"track","event":"E","userId":"u","context":{"locale":"en"}}"#,
            br#"{"type":"track","event":"E","userId":"u","context":{"ip":"203.0.113.\u0037"}}"#,
            br#"{"type":"track","event":"E","userId":"u","context":{"ip":"1.1.1.1","ip":"2.2.2.2"}}"#,
            br#"{"type":"page","userId":"u","ip":"9.9.9.9","context":{"ip":7}}"#,
        ];
        for stored in cases {
            for ip in [None, Some("203.0.113.0")] {
                let appended = read(stored, |e| e.append_member(stored, "enrichment", br#"{"a":1}"#, ip));
                let scanned = crate::append_member(stored, "enrichment", br#"{"a":1}"#, ip);
                assert_eq!(appended, Ok(scanned), "{}", String::from_utf8_lossy(stored));
            }
        }
        let padded = b" {\"type\":\"page\", \"userId\":\"u\"} \n";
        let appended = read(padded, |e| e.append_member(padded, "x", b"1", None)).expect("valid").expect("appended");
        assert_eq!(appended, b"{\"type\":\"page\", \"userId\":\"u\",\"x\":1}");
        let twice = br#"{"type":"page","userId":"u","x":0}"#;
        assert_eq!(read(twice, |e| e.append_member(twice, "x", b"1", None)), Ok(None));
    }

    #[test]
    fn rejects_with_the_owned_error() {
        for bad in [&b"{not json"[..], b"[1]", br#"{"type":"track","userId":"u"}"#, br#"{"type":"page"}"#] {
            assert_eq!(read(bad, |_| ()), Err(Event::from_slice(bad).expect_err("invalid")), "{bad:?}");
        }
    }
}
