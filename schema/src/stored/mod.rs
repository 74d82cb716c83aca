//! An event read back from a topic the gateway wrote, borrowed: scanned once by the gateway's
//! validating scan (which records the members of every object as offsets), checked by the
//! rules [`Event::from_slice`] applies, and read in place through [`JsonRef`], so that a
//! consumer (the enricher) decodes only the fields it reads.

mod json_ref;
mod table;

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::error::EventError;
use crate::event::{Event, EventType};
use crate::splice::check::{self, Field, Known};
use table::Table;

pub use json_ref::{JsonItems, JsonRef};

/// One valid stored event, borrowed from the stored bytes.
#[derive(Debug)]
pub struct StoredEvent<'s> {
    /// The stored bytes, whitespace around the event included (UTF-8: the scan checked).
    stored: &'s str,
    /// The members of every object and the items of every array, the top level's first.
    table: Table,
    known: Known<'s>,
    kind: EventType,
    times: check::CheckedTimes,
}

impl<'s> StoredEvent<'s> {
    /// Scans and validates `bytes`. Errors are [`Event::from_slice`]'s, word for word: any
    /// event this rejects is handed to it for the error.
    pub fn parse(bytes: &'s [u8]) -> Result<Self, EventError> {
        let stored = simdutf8::basic::from_utf8(bytes).map_err(|_| owned_error(bytes))?;
        let table = table::record(stored).ok_or_else(|| owned_error(bytes))?;
        let known = Known::of_values(
            table.top().iter().map(|member| (member.name(stored), stored.get(member.at()..member.end()))),
        );
        let (kind, times) = check::check(&known, None).map_err(|_| owned_error(bytes))?;
        Ok(Self { stored, table, known, kind, times })
    }

    /// The stored bytes with the member `name` added as `value` (its JSON text) and
    /// `context.ip`, where it is a string, set to `context_ip`: what [`crate::append_member`]
    /// writes, found from this scan rather than by scanning the bytes again. Everything else
    /// is copied as stored, whitespace included. `None` when the event already has a member
    /// `name`.
    pub fn append_member(&self, name: &str, value: &[u8], context_ip: Option<&str>) -> Option<Vec<u8>> {
        if self.get(name).is_some() {
            return None;
        }
        let stored = self.stored.as_bytes();
        let write_whole = || crate::append_member(stored, name, value, context_ip);
        // A repeated key is written once, its last copy (as a reader keeps it): an earlier
        // copy of `context.ip` must not stay behind unmasked.
        if self.table.repeated || self.table.top().is_empty() {
            return write_whole();
        }
        let context = self.object("context");
        let stored_ip = context.as_ref().and_then(|c| c.get("ip")).filter(|ip| ip.as_str().is_some());
        let ip = match (context_ip, stored_ip) {
            // Kept as the byte scan writes it: the whole event, the IP re-encoded.
            (Some(_), Some(old)) if old.is_escaped_str() => return write_whole(),
            (Some(ip), Some(old)) => Some((old.range(), ip)),
            _ => None,
        };
        let start = stored.len() - stored.trim_ascii_start().len();
        let end = stored.trim_ascii_end().len().checked_sub(1)?;
        let mut out = Vec::with_capacity(end - start + value.len() + name.len() + 24);
        let mut copied = start;
        if let Some((old, ip)) = ip {
            out.extend_from_slice(stored.get(copied..old.start)?);
            serde_json::to_writer(&mut out, ip).ok()?;
            copied = old.end;
        }
        out.extend_from_slice(stored.get(copied..end)?);
        out.push(b',');
        crate::splice::close_with_member(out, name, value)
    }

    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// A top-level member, as stored.
    pub fn get(&self, name: &str) -> Option<JsonRef<'_>> {
        let member = table::last_named(self.table.top(), self.stored, name)?;
        Some(JsonRef::of_entry(self.stored, &self.table.entries, member))
    }

    /// A top-level member that is an object (`properties`, `context`, ...).
    pub fn object(&self, name: &str) -> Option<JsonRef<'_>> {
        self.get(name).filter(JsonRef::is_object)
    }

    /// A top-level member that is a string.
    pub fn str(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name)?.as_str()
    }

    /// `messageId` when non-empty, a numeric id as its decimal text (as [`Event::message_id`]).
    pub fn message_id(&self) -> Option<Cow<'s, str>> {
        self.known.id(Field::MessageId).filter(|id| !id.is_empty())
    }

    /// The visitor, as [`Event::visitor_key`] names it: `anonymousId`, else `userId`.
    pub fn visitor_key(&self) -> Option<Cow<'s, str>> {
        let id = |field| self.known.id(field).filter(|id| !id.is_empty());
        id(Field::AnonymousId).or_else(|| id(Field::UserId))
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
        Ok(_) => EventError::InvalidJson("the event reads differently to the scan and to serde_json".into()),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
