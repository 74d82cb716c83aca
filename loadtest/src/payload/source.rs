//! Where a connection's requests come from: made fresh from the simulated visitors, or cycled
//! from a ring made before the run, for a target that reads no body.

use super::{Generator, Request};

/// At most this many requests in one connection's ring... A ring that outgrows the CPU's
/// caches costs a miss on every renumber and send: 64 per connection took 2% of the
/// generator's profile in `renumber` alone.
const RING_REQUESTS: usize = 4;
/// ...and at most this many body bytes: a ring of batches holds one.
const RING_BYTES: usize = 16 * 1024;

/// A connection's next request, made while the connection waits for its next job.
#[derive(Debug)]
pub struct RequestSource {
    generator: Generator,
    ring: Vec<Request>,
    at: usize,
    reuse: bool,
    wrapped: bool,
}

impl RequestSource {
    /// Every request made from the visitors as it is needed.
    pub fn fresh(mut generator: Generator) -> Self {
        let first = generator.next_request();
        Self { generator, ring: vec![first], at: 0, reuse: false, wrapped: false }
    }

    /// Requests made once, up to 4 of them or 16 KiB, then sent again in turn, each time
    /// with new message ids. Making a realistic event cost about 3.5 µs, some 15% of the
    /// generator's core in an open loop, and a target that discards bodies (the hyper
    /// baseline, the HTTP ceiling) would otherwise partly measure the generator: wrk, the
    /// reference, sends one fixed body.
    pub fn ring(mut generator: Generator) -> Self {
        let mut ring = Vec::new();
        let mut bytes = 0;
        while ring.is_empty() || (ring.len() < RING_REQUESTS && bytes < RING_BYTES) {
            let request = generator.next_request();
            bytes += request.body.len();
            ring.push(request);
        }
        Self { generator, ring, at: 0, reuse: true, wrapped: false }
    }

    /// The request to send next; the caller stamps it with its intended time.
    pub fn current(&mut self) -> &mut Request {
        &mut self.ring[self.at]
    }

    /// Moves on after a send: makes the next request, or takes the ring's next one and
    /// renumbers it once the ring has gone round.
    pub fn advance(&mut self) {
        if !self.reuse {
            self.ring[0] = self.generator.next_request();
            return;
        }
        self.at += 1;
        if self.at == self.ring.len() {
            self.at = 0;
            self.wrapped = true;
        }
        if self.wrapped {
            let request = &mut self.ring[self.at];
            let first_seq = self.generator.reserve(request.event_count());
            request.renumber(first_seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::payload::catalog::Catalog;
    use crate::payload::ids::{MessageTag, Sequence};
    use crate::payload::Mode;

    fn ids_in(body: &[u8]) -> Vec<MessageTag> {
        let mut ids = Vec::new();
        let mut from = 0;
        while let Some(tag) = MessageTag::find_in(&body[from..]) {
            ids.push(tag);
            from += memchr::memmem::find(&body[from..], b"\"messageId\":\"").unwrap_or(0) + 1;
        }
        ids
    }

    #[test]
    fn a_ring_sends_each_message_id_once_and_keeps_the_event_copies_in_step() {
        for mode in [Mode::Single, Mode::Batch { events: 7 }] {
            let generator = Generator::new(Arc::new(Catalog::builtin()), 20, 5, Sequence::new(9), "wk", mode);
            let mut source = RequestSource::ring(generator);
            let ring = source.ring.len();
            let mut seen = BTreeSet::new();
            for sent in 0..ring * 3 {
                let request = source.current();
                request.stamp(sent as u64);
                let in_body = ids_in(&request.body);
                assert_eq!(in_body.len() as u64, request.event_count(), "{mode:?}");
                for (offset, (tag, event)) in in_body.iter().zip(&request.events).enumerate() {
                    assert_eq!(tag.seq, request.first_seq + offset as u64);
                    assert_eq!(tag.intended_us, sent as u64);
                    assert_eq!(MessageTag::find_in(&event.json), Some(*tag));
                    assert!(seen.insert(tag.seq), "{tag:?} sent twice");
                }
                source.advance();
            }
        }
    }
}
