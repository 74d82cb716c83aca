//! The spool's on-disk record: a length- and CRC-framed copy of one Kafka record, with the
//! time it was spooled.
//!
//! Frame: `magic u8 | body_len u32 LE | crc32 u32 LE (of body) | body`.
//! Body: `written_at_ms u64 | topic (u16 len) | key flag u8 + key (u32 len) |
//! [v2: partition i32 LE, -1 for none] |
//! header count u16, each name (u16 len) + value (u32 len) | payload (u32 len)`.
//!
//! The magic byte is the format version: v1 (`0xC5`) frames, written before routing could
//! pick a partition, are still read (with no partition); new frames are v2 (`0xC6`).

use crate::record::{Record, RecordHeaders};

const MAGIC_V1: u8 = 0xC5;
const MAGIC_V2: u8 = 0xC6;
const NO_PARTITION: i32 = -1;
pub const FRAME_HEADER: usize = 9;

/// Appends one framed record to `out`.
pub fn encode(record: &Record, written_at_ms: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[MAGIC_V2, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&written_at_ms.to_le_bytes());
    put_short(out, record.topic.as_bytes());
    match &record.key {
        Some(key) => {
            out.push(1);
            put_long(out, key.as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&record.partition.unwrap_or(NO_PARTITION).to_le_bytes());
    out.extend_from_slice(&(record.headers.len() as u16).to_le_bytes());
    for (name, value) in record.headers.pairs() {
        put_short(out, name.as_bytes());
        put_long(out, value.as_bytes());
    }
    put_long(out, &record.payload);
    let body_len = (out.len() - start - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start + 1..start + 5].copy_from_slice(&body_len.to_le_bytes());
    out[start + 5..start + 9].copy_from_slice(&crc.to_le_bytes());
}

fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_long(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A record read back from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub record: Record,
    pub written_at_ms: u64,
    /// Bytes the frame takes on disk.
    pub frame_len: usize,
}

/// What `decode` found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Record(Spooled),
    /// The buffer ends inside a frame: a torn write at the tail, or more bytes to read.
    Incomplete,
    /// Bad magic, bad CRC or a malformed body: the rest of the segment cannot be trusted.
    Corrupt,
}

/// Decodes the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < FRAME_HEADER {
        return Decoded::Incomplete;
    }
    let version = match buf[0] {
        MAGIC_V1 => 1,
        MAGIC_V2 => 2,
        _ => return Decoded::Corrupt,
    };
    let body_len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    let crc = u32::from_le_bytes([buf[5], buf[6], buf[7], buf[8]]);
    let Some(body) = buf.get(FRAME_HEADER..FRAME_HEADER + body_len) else { return Decoded::Incomplete };
    if crc32fast::hash(body) != crc {
        return Decoded::Corrupt;
    }
    match parse_body(body, version) {
        Some((record, written_at_ms)) => {
            Decoded::Record(Spooled { record, written_at_ms, frame_len: FRAME_HEADER + body_len })
        }
        None => Decoded::Corrupt,
    }
}

fn parse_body(body: &[u8], version: u8) -> Option<(Record, u64)> {
    let mut cursor = Cursor { buf: body };
    let written_at_ms = u64::from_le_bytes(cursor.take(8)?.try_into().ok()?);
    let topic = cursor.short_str()?.to_owned();
    let key = match cursor.take(1)?[0] {
        0 => None,
        _ => Some(cursor.long_str()?.to_owned()),
    };
    let partition = match version {
        1 => None,
        _ => Some(i32::from_le_bytes(cursor.take(4)?.try_into().ok()?)).filter(|p| *p != NO_PARTITION),
    };
    let header_count = u16::from_le_bytes(cursor.take(2)?.try_into().ok()?);
    let mut pairs = Vec::with_capacity(header_count as usize);
    for _ in 0..header_count {
        let name = cursor.short_str()?;
        pairs.push((name, cursor.long_str()?));
    }
    // Borrowed from the read buffer: only what the record keeps is copied out of it.
    let headers = RecordHeaders::from_pairs(pairs);
    let payload = cursor.long_bytes()?.to_vec();
    cursor.buf.is_empty().then_some((Record { topic, key, partition, payload, headers }, written_at_ms))
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.buf.get(..n)?, self.buf.get(n..)?);
        self.buf = rest;
        Some(head)
    }

    fn short_str(&mut self) -> Option<&'a str> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn long_bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }

    fn long_str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.long_bytes()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            topic: "events.raw".into(),
            key: Some("visitor-1".into()),
            partition: None,
            payload: br#"{"type":"track"}"#.to_vec(),
            headers: RecordHeaders::new(
                "web".into(),
                Some(clickstream_schema::EventType::Track),
                crate::protocols::Protocol::Segment,
            ),
        }
    }

    #[test]
    fn round_trips_topic_key_headers_and_payload() {
        let mut buf = Vec::new();
        encode(&sample(), 42, &mut buf);
        encode(
            &Record {
                key: None,
                partition: Some(2),
                headers: RecordHeaders::new("api".into(), None, crate::protocols::Protocol::Segment),
                ..sample()
            },
            43,
            &mut buf,
        );
        let Decoded::Record(first) = decode(&buf) else { panic!("first record") };
        assert_eq!((first.record, first.written_at_ms), (sample(), 42));
        let Decoded::Record(second) = decode(&buf[first.frame_len..]) else { panic!("second record") };
        assert_eq!((second.record.key, second.record.partition), (None, Some(2)));
        assert_eq!(second.record.headers, RecordHeaders::new("api".into(), None, crate::protocols::Protocol::Segment));
        assert_eq!(first.frame_len + second.frame_len, buf.len());
    }

    /// A v1 frame, byte for byte as the gateway wrote it before partitions were spooled.
    #[test]
    fn version_1_frames_still_read() {
        let mut body = 7u64.to_le_bytes().to_vec();
        put_short(&mut body, b"events.raw");
        body.push(1);
        put_long(&mut body, b"visitor-1");
        body.extend_from_slice(&1u16.to_le_bytes());
        put_short(&mut body, b"source");
        put_long(&mut body, b"web");
        put_long(&mut body, b"{}");
        let mut frame = vec![MAGIC_V1];
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        let Decoded::Record(read) = decode(&frame) else { panic!("v1 frame decodes") };
        assert_eq!(
            (read.record.key.as_deref(), read.record.partition, read.written_at_ms),
            (Some("visitor-1"), None, 7)
        );
        assert_eq!(read.record.headers, RecordHeaders::new("web".into(), None, crate::protocols::Protocol::Segment));
        assert_eq!(read.frame_len, frame.len());
    }

    #[test]
    fn torn_and_flipped_bytes_are_detected() {
        let mut buf = Vec::new();
        encode(&sample(), 1, &mut buf);
        assert_eq!(decode(&buf[..buf.len() - 1]), Decoded::Incomplete);
        let mut flipped = buf.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        assert_eq!(decode(&flipped), Decoded::Corrupt);
        assert_eq!(decode(&[0u8; 16]), Decoded::Corrupt);
    }
}
