//! Writing a spliced event: the client's members copied as sent, except the ones the edge
//! owns (`type`, `messageId`, numeric ids, the four times, `context`, `integrations`), which
//! are rewritten in place or appended, and `writeKey`, which is dropped.

use chrono::{DateTime, Utc};
use simd_json::borrowed::{Object, Value};

use super::check::{id_text, is_null};
use super::raw::Member;
use super::{BatchFields, CheckedEvent, SharedObject};
use crate::time::{write_timestamp_json, EdgeTimes};
use crate::Connection;

/// An object being written: its buffer and whether a member has been written yet.
struct ObjectWriter<'b> {
    buf: &'b mut Vec<u8>,
    empty: bool,
}

impl<'b> ObjectWriter<'b> {
    fn open(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'{');
        Self { buf, empty: true }
    }

    /// Starts a member; `key` is a JSON string with its quotes.
    fn key(&mut self, key: &[u8]) -> &mut Vec<u8> {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.extend_from_slice(key);
        self.buf.push(b':');
        self.buf
    }

    /// Copies a member as sent.
    fn copy(&mut self, member: &Member<'_>) {
        self.key(member.key).extend_from_slice(member.value);
    }

    fn string(&mut self, key: &[u8], text: &str) {
        write_string(self.key(key), text);
    }

    fn close(self) {
        self.buf.push(b'}');
    }
}

fn write_string(buf: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(buf, text).unwrap_or_else(|e| unreachable!("a string always serializes: {e}"));
}

/// Which members the edge owns have been written.
#[derive(Default)]
struct Written {
    message_id: bool,
    context: bool,
    integrations: bool,
    times: [bool; 4],
}

const TIME_KEYS: [&[u8]; 4] = [b"\"timestamp\"", b"\"originalTimestamp\"", b"\"sentAt\"", b"\"receivedAt\""];

pub(super) fn splice(
    event: &CheckedEvent<'_, '_>,
    batch: &BatchFields<'_, '_>,
    received_at: DateTime<Utc>,
    connection: &Connection<'_>,
) -> Vec<u8> {
    let CheckedEvent { members, map, kind, times: [timestamp, original, sent_at, _], .. } = event;
    let (timestamp, original, sent_at) = (*timestamp, *original, *sent_at);
    let settled = EdgeTimes::settle(received_at, timestamp, original, sent_at.or(batch.sent_at));
    let times = [Some(settled.timestamp), settled.original_timestamp, settled.sent_at, Some(settled.received_at)];
    let size: usize = members.iter().map(|m| m.key.len() + m.value.len() + 2).sum();
    let mut buf = Vec::with_capacity(size + 256);
    let mut out = ObjectWriter::open(&mut buf);
    out.string(b"\"type\"", kind.as_str());
    let mut written = Written::default();
    for member in members {
        let name = &member.name;
        let Some(value) = map.get(name.as_ref()) else { continue };
        match name.as_ref() {
            "type" | "writeKey" => {}
            "messageId" => {
                written.message_id = true;
                match value {
                    Value::String(id) if !id.is_empty() => out.copy(member),
                    Value::String(_) => out.string(member.key, &new_message_id()),
                    other => match id_text(other) {
                        Some(text) => out.string(member.key, &text),
                        None => out.string(member.key, &new_message_id()),
                    },
                }
            }
            "anonymousId" | "userId" | "groupId" | "previousId" => match value {
                Value::String(_) => out.copy(member),
                other => {
                    if let Some(text) = id_text(other) {
                        out.string(member.key, &text);
                    }
                }
            },
            "event" | "name" | "properties" | "traits" => {
                if !is_null(value) {
                    out.copy(member);
                }
            }
            "context" => {
                written.context = true;
                let own = own_object(&event.context, value);
                write_context(out.key(member.key), &own, batch.context.as_ref(), connection);
            }
            "integrations" => {
                written.integrations = true;
                let own = own_object(&event.integrations, value);
                if own.is_some() || batch.integrations.is_some() {
                    write_merged(out.key(member.key), &own, batch.integrations.as_ref());
                }
            }
            "timestamp" | "originalTimestamp" | "sentAt" | "receivedAt" => {
                let slot = TIME_KEYS.iter().position(|k| &k[1..k.len() - 1] == name.as_bytes()).unwrap_or(0);
                written.times[slot] = true;
                if let Some(time) = times[slot] {
                    write_timestamp_json(out.key(member.key), time);
                }
            }
            _ => out.copy(member),
        }
    }
    if !written.message_id {
        out.string(b"\"messageId\"", &new_message_id());
    }
    if !written.context {
        write_context(out.key(b"\"context\""), &None, batch.context.as_ref(), connection);
    }
    if !written.integrations && batch.integrations.is_some() {
        write_merged(out.key(b"\"integrations\""), &None, batch.integrations.as_ref());
    }
    for ((key, time), done) in TIME_KEYS.iter().zip(times).zip(written.times) {
        if let (Some(time), false) = (time, done) {
            write_timestamp_json(out.key(key), time);
        }
    }
    out.close();
    buf
}

fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An event's own object member: its members as sent and their values (`None` for null).
type Own<'a, 'r, 's> = Option<(&'a [Member<'r>], &'a Object<'s>)>;

fn own_object<'a, 'r, 's>(members: &'a [Member<'r>], value: &'a Value<'s>) -> Own<'a, 'r, 's> {
    match value {
        Value::Object(map) => Some((members, map)),
        _ => None,
    }
}

/// The members of an object merged with the batch's: the event's own, then the batch's keys
/// the event does not set, each as sent.
fn merged<'a, 'r>(
    own: &'a Own<'r, '_, '_>,
    shared: Option<&'a SharedObject<'r, '_>>,
) -> impl Iterator<Item = &'a Member<'r>> + 'a {
    let own_members = own.iter().flat_map(|(members, _)| members.iter());
    let shared_members = shared.into_iter().flat_map(|s| s.members.iter()).filter(move |m| match own {
        Some((_, map)) => !map.contains_key(m.name.as_ref()),
        None => true,
    });
    own_members.chain(shared_members)
}

fn write_merged(buf: &mut Vec<u8>, own: &Own<'_, '_, '_>, shared: Option<&SharedObject<'_, '_>>) {
    let mut out = ObjectWriter::open(buf);
    for member in merged(own, shared) {
        out.copy(member);
    }
    out.close();
}

/// `context` merged with the batch's, then `ip` and `userAgent` filled from the connection
/// where absent (and `ip` where not a string), the IP anonymized if configured.
fn write_context(
    buf: &mut Vec<u8>,
    own: &Own<'_, '_, '_>,
    shared: Option<&SharedObject<'_, '_>>,
    connection: &Connection<'_>,
) {
    let (mut has_ip, mut has_agent) = (false, false);
    let mut out = ObjectWriter::open(buf);
    for member in merged(own, shared) {
        match member.name.as_ref() {
            "ip" => {
                has_ip = true;
                let own_value = own.as_ref().and_then(|(_, map)| map.get("ip"));
                let value = own_value.or_else(|| shared.and_then(|s| s.value.get("ip")));
                match value {
                    Some(Value::String(ip)) if connection.anonymize_ip => {
                        out.string(member.key, &connection.anonymized(ip));
                    }
                    Some(Value::String(_)) => out.copy(member),
                    _ => out.string(member.key, &connection.own_ip()),
                }
            }
            "userAgent" => {
                has_agent = true;
                out.copy(member);
            }
            _ => out.copy(member),
        }
    }
    if !has_ip {
        out.string(b"\"ip\"", &connection.own_ip());
    }
    if let (Some(agent), false) = (connection.user_agent, has_agent) {
        out.string(b"\"userAgent\"", agent);
    }
    out.close();
}
