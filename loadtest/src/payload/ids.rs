//! Message ids the harness can recognise when it reads events back from Kafka: each one
//! carries the run, a sequence number and the request's intended send time, so matching
//! needs no table of sent events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Prefix of every load-test message id.
pub const PREFIX: &str = "lt";

/// Hex digits of the intended time: 12 is nine years of microseconds.
pub const STAMP_WIDTH: usize = 12;

/// Hex digits of the sequence number: fixed, so a request sent again can be renumbered in
/// place. 10 is a trillion events.
pub const SEQ_WIDTH: usize = 10;

/// Writes `intended_us` as the fixed-width hex stamp at the start of `slot`.
pub fn write_stamp(slot: &mut [u8], intended_us: u64) {
    write_hex(&mut slot[..STAMP_WIDTH], intended_us);
}

/// Writes `seq` as the fixed-width hex sequence number that ends just before a stamp at
/// `stamp_at` (the two are separated by a `-`).
pub fn write_seq(id: &mut [u8], stamp_at: usize, seq: u64) {
    write_hex(&mut id[stamp_at - 1 - SEQ_WIDTH..stamp_at - 1], seq);
}

fn write_hex(slot: &mut [u8], value: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let width = slot.len();
    for (i, byte) in slot.iter_mut().enumerate() {
        let shift = 4 * (width - 1 - i);
        *byte = HEX[((value >> shift) & 0xf) as usize];
    }
}

/// What a load-test message id says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageTag {
    pub run: u32,
    pub seq: u64,
    /// Intended send time of the request, in microseconds since the run's clock origin.
    pub intended_us: u64,
}

impl MessageTag {
    /// `lt<run, 8 hex>-<seq, 10 hex>-<intended µs, 12 hex>`. The last two are fixed-width so a
    /// request made ahead of time can be stamped in place when it is sent, and renumbered when
    /// it is sent again.
    pub fn format(&self) -> String {
        format!(
            "{PREFIX}{:08x}-{:0seq_width$x}-{:0stamp_width$x}",
            self.run,
            self.seq,
            self.intended_us,
            seq_width = SEQ_WIDTH,
            stamp_width = STAMP_WIDTH
        )
    }

    pub fn parse(id: &[u8]) -> Option<Self> {
        let rest = id.strip_prefix(PREFIX.as_bytes())?;
        let text = std::str::from_utf8(rest).ok()?;
        let (run, rest) = text.split_once('-')?;
        let (seq, intended) = rest.split_once('-')?;
        if run.len() != 8 {
            return None;
        }
        Some(Self {
            run: u32::from_str_radix(run, 16).ok()?,
            seq: u64::from_str_radix(seq, 16).ok()?,
            intended_us: u64::from_str_radix(intended, 16).ok()?,
        })
    }

    /// Finds the load-test message id in an event's JSON without parsing the whole event.
    pub fn find_in(json: &[u8]) -> Option<Self> {
        const KEY: &[u8] = b"\"messageId\":\"";
        let start = memchr::memmem::find(json, KEY)? + KEY.len();
        let len = memchr::memchr(b'"', &json[start..])?;
        Self::parse(&json[start..start + len])
    }
}

/// Hands out sequence numbers for one run; shared by every connection.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub run: u32,
    next: Arc<AtomicU64>,
}

impl Sequence {
    pub fn new(run: u32) -> Self {
        Self { run, next: Arc::new(AtomicU64::new(0)) }
    }

    /// Reserves `count` consecutive numbers and returns the first.
    pub fn reserve(&self, count: u64) -> u64 {
        self.next.fetch_add(count, Ordering::Relaxed)
    }

    /// How many numbers have been handed out.
    pub fn issued(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_are_found_in_event_json() {
        let tag = MessageTag { run: 0xdead_beef, seq: 12_345, intended_us: 9_876_543_210 };
        let id = tag.format();
        assert_eq!(MessageTag::parse(id.as_bytes()), Some(tag));
        let json = format!(r#"{{"type":"track","messageId":"{id}","event":"Product Viewed"}}"#);
        assert_eq!(MessageTag::find_in(json.as_bytes()), Some(tag));
    }

    #[test]
    fn stamps_are_written_in_place() {
        let mut id = MessageTag { run: 1, seq: 2, intended_us: 0 }.format().into_bytes();
        let at = id.len() - STAMP_WIDTH;
        write_stamp(&mut id[at..], 0x1234_5678_9abc);
        assert_eq!(MessageTag::parse(&id), Some(MessageTag { run: 1, seq: 2, intended_us: 0x1234_5678_9abc }));
        write_seq(&mut id, at, 0xab_cdef_0123);
        assert_eq!(
            MessageTag::parse(&id),
            Some(MessageTag { run: 1, seq: 0xab_cdef_0123, intended_us: 0x1234_5678_9abc })
        );
    }

    #[test]
    fn foreign_message_ids_are_ignored() {
        assert_eq!(MessageTag::parse(b"ajs-next-1a2b3c"), None);
        assert_eq!(MessageTag::parse(b"0196a0b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"), None);
        assert_eq!(MessageTag::find_in(br#"{"type":"track","event":"A"}"#), None);
    }
}
