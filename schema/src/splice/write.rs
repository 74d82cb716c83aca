//! Writing a spliced event: the client's members copied as sent, except the ones the edge
//! owns (`type`, `messageId`, numeric ids, the four times, `context`, `integrations`), which
//! are rewritten in place or appended, and `writeKey`, which is dropped.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::check::{id_text, Field, Kind, TIME_FIELDS};
use super::raw::{key_name, Member, PAIRWISE_MAX};
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
        crate::write_json_str(self.key(key), text);
    }

    fn close(self) {
        self.buf.push(b'}');
    }
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
    event: &CheckedEvent<'_>,
    batch: &BatchFields<'_>,
    received_at: DateTime<Utc>,
    connection: &Connection<'_>,
) -> Vec<u8> {
    let CheckedEvent { members, kind, times: [timestamp, original, sent_at, _], .. } = event;
    let (timestamp, original, sent_at) = (*timestamp, *original, *sent_at);
    let settled = EdgeTimes::settle(received_at, timestamp, original, sent_at.or(batch.sent_at));
    let times = [Some(settled.timestamp), settled.original_timestamp, settled.sent_at, Some(settled.received_at)];
    let size: usize = members.iter().map(|m| m.key.len() + m.value.len() + 2).sum();
    let mut buf = Vec::with_capacity(size + 256);
    let mut out = ObjectWriter::open(&mut buf);
    out.string(b"\"type\"", kind.as_str());
    let mut written = Written::default();
    for member in members {
        let value = member.value;
        let Some(field) = Field::of(&member.name) else {
            out.copy(member);
            continue;
        };
        match field {
            Field::Type | Field::WriteKey => {}
            Field::MessageId => {
                written.message_id = true;
                match Kind::of(value) {
                    Kind::String if value.len() > 2 => out.copy(member),
                    _ => match std::str::from_utf8(value).ok().and_then(id_text).filter(|id| !id.is_empty()) {
                        Some(text) => out.string(member.key, &text),
                        None => out.string(member.key, &new_message_id()),
                    },
                }
            }
            Field::AnonymousId | Field::UserId | Field::GroupId | Field::PreviousId => match Kind::of(value) {
                Kind::String => out.copy(member),
                _ => {
                    if let Some(text) = std::str::from_utf8(value).ok().and_then(id_text) {
                        out.string(member.key, &text);
                    }
                }
            },
            Field::Event | Field::Name | Field::Properties | Field::Traits => {
                if Kind::of(value) != Kind::Null {
                    out.copy(member);
                }
            }
            Field::Context => {
                written.context = true;
                let own = own_object(&event.context, value);
                write_context(out.key(member.key), own, batch.context.as_ref(), connection);
            }
            Field::Integrations => {
                written.integrations = true;
                let own = own_object(&event.integrations, value);
                if own.is_some() || batch.integrations.is_some() {
                    write_merged(out.key(member.key), own, batch.integrations.as_ref());
                }
            }
            Field::Timestamp | Field::OriginalTimestamp | Field::SentAt | Field::ReceivedAt => {
                let slot = TIME_FIELDS.iter().position(|f| *f == field).unwrap_or(0);
                written.times[slot] = true;
                if let Some(time) = times[slot] {
                    write_timestamp_json(out.key(member.key), time);
                }
            }
        }
    }
    if !written.message_id {
        out.string(b"\"messageId\"", &new_message_id());
    }
    if !written.context {
        write_context(out.key(b"\"context\""), None, batch.context.as_ref(), connection);
    }
    if !written.integrations && batch.integrations.is_some() {
        write_merged(out.key(b"\"integrations\""), None, batch.integrations.as_ref());
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

/// An event's own object member: its members as sent (`None` when it is null).
type Own<'a, 'r> = Option<&'a [Member<'r>]>;

fn own_object<'a, 'r>(members: &'a [Member<'r>], value: &[u8]) -> Own<'a, 'r> {
    (Kind::of(value) == Kind::Object).then_some(members)
}

/// The members of an object merged with the batch's: the event's own, then the batch's keys
/// the event does not set, each as sent. Many own keys are looked up in a hash set, so that
/// two objects of thousands of keys do not cost their product.
fn merged<'a, 'r>(own: Own<'a, 'r>, shared: Option<&'a SharedObject<'r>>) -> impl Iterator<Item = &'a Member<'r>> + 'a {
    let own_members = own.unwrap_or_default();
    let many = own_members.len() > PAIRWISE_MAX && shared.is_some_and(|s| !s.members.is_empty());
    let own_names: Option<HashSet<&str>> = many.then(|| own_members.iter().map(|o| o.name.as_ref()).collect());
    let shared_members = shared.into_iter().flat_map(|s| s.members.iter()).filter(move |m| match &own_names {
        Some(names) => !names.contains(m.name.as_ref()),
        None => !own_members.iter().any(|o| o.name == m.name),
    });
    own_members.iter().chain(shared_members)
}

fn write_merged(buf: &mut Vec<u8>, own: Own<'_, '_>, shared: Option<&SharedObject<'_>>) {
    let mut out = ObjectWriter::open(buf);
    for member in merged(own, shared) {
        out.copy(member);
    }
    out.close();
}

/// `context` merged with the batch's, then `ip` and `userAgent` filled from the connection
/// where absent (and `ip` where not a string), the IP anonymized if configured.
fn write_context(buf: &mut Vec<u8>, own: Own<'_, '_>, shared: Option<&SharedObject<'_>>, connection: &Connection<'_>) {
    let (mut has_ip, mut has_agent) = (false, false);
    let mut out = ObjectWriter::open(buf);
    for member in merged(own, shared) {
        match member.name.as_ref() {
            "ip" => {
                has_ip = true;
                match Kind::of(member.value) {
                    Kind::String if connection.anonymize_ip => {
                        out.string(member.key, &connection.anonymized(&key_name(member.value)));
                    }
                    Kind::String => out.copy(member),
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
