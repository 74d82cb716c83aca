//! Sessionization per visitor in event time, in bounded two-generation maps, plus the fixed-size
//! `messageId` window that drops repeats the gateway's best-effort dedup let through.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::time::{Duration, Instant};

use clickstream_platform::recent::{RecentKeys, Stamp};

use crate::config::{DedupSettings, SessionSettings};

/// A stable 64-bit FNV-1a hash: session ids must be the same in every process and run, so that
/// a restarted enricher that replays a session gives it the same id.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Where in the input an event was read: index of its topic in the input list, and offset.
pub type InputPosition = (usize, i64);

#[derive(Debug, Clone)]
struct Session {
    id: String,
    start_ms: i64,
    last_ms: i64,
    sequence: u64,
    /// First offset of this session in each input topic, so a restart knows where to replay from.
    first_offsets: Vec<InputPosition>,
}

/// What the enricher writes under `enrichment.session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    pub sequence: u64,
    pub start_ms: i64,
}

/// Session state for the visitors of one input partition.
///
/// Not moka: a get clones the session, an insert costs about 6k instructions, together a
/// tenth of the enricher's work per event (docs/performance.md). Two generations of plain
/// maps bound it instead: a visitor seen again moves to the current one, and when that is full
/// or older than the idle time it becomes the previous one, whose visitors are dropped.
#[derive(Debug)]
pub struct Sessions {
    current: ByVisitor,
    previous: ByVisitor,
    generation: Generation,
    gap_ms: i64,
    watermark_ms: i64,
}

/// Sessions by visitor id: hashed with foldhash, as SipHash cost more than the lookup.
type ByVisitor = HashMap<String, Session, foldhash::fast::RandomState>;

/// When a two-generation map turns over: at `size` entries, or `max_age` after it began.
#[derive(Debug)]
struct Generation {
    size: usize,
    max_age: Duration,
    since: Instant,
    /// Calls until the clock is read again: once per call would cost more than the lookup.
    until_clock: u32,
}

const CLOCK_EVERY: u32 = 256;

impl Generation {
    fn new(capacity: u64, max_age: Duration) -> Self {
        let size = usize::try_from(capacity / 2).unwrap_or(usize::MAX).max(1);
        Self { size, max_age, since: Instant::now(), until_clock: CLOCK_EVERY }
    }

    /// True when a generation holding `len` entries should become the previous one.
    fn due(&mut self, len: usize) -> bool {
        if len >= self.size {
            return true;
        }
        self.until_clock -= 1;
        if self.until_clock > 0 {
            return false;
        }
        self.until_clock = CLOCK_EVERY;
        self.since.elapsed() >= self.max_age
    }

    fn turn(&mut self) {
        self.since = Instant::now();
        self.until_clock = CLOCK_EVERY;
    }
}

impl Session {
    fn start(visitor: &str, event_ms: i64, position: InputPosition) -> Self {
        Self {
            id: format!("{:016x}", stable_hash(&[visitor.as_bytes(), &event_ms.to_be_bytes()])),
            start_ms: event_ms,
            last_ms: event_ms,
            sequence: 1,
            first_offsets: vec![position],
        }
    }

    /// The next event of this visitor: the same session within the gap, else a new one.
    fn observe(&mut self, visitor: &str, event_ms: i64, position: InputPosition, gap_ms: i64) -> SessionView {
        if event_ms.saturating_sub(self.last_ms) <= gap_ms {
            self.sequence += 1;
            self.last_ms = self.last_ms.max(event_ms);
            if !self.first_offsets.iter().any(|(topic, _)| *topic == position.0) {
                self.first_offsets.push(position);
            }
        } else {
            *self = Self::start(visitor, event_ms, position);
        }
        self.view()
    }

    fn view(&self) -> SessionView {
        SessionView { id: self.id.clone(), sequence: self.sequence, start_ms: self.start_ms }
    }
}

impl Sessions {
    pub fn new(settings: &SessionSettings) -> Self {
        let gap = Duration::from_secs(settings.inactivity_minutes.saturating_mul(60));
        Self {
            current: ByVisitor::default(),
            previous: ByVisitor::default(),
            // Wall-clock idleness only frees memory; the session rule itself uses event time.
            generation: Generation::new(settings.max_visitors, gap + Duration::from_secs(300)),
            gap_ms: i64::try_from(gap.as_millis()).unwrap_or(i64::MAX),
            watermark_ms: i64::MIN,
        }
    }

    /// Places one event of `visitor` at `event_ms` in a session.
    pub fn observe(&mut self, visitor: &str, event_ms: i64, position: InputPosition) -> SessionView {
        self.watermark_ms = self.watermark_ms.max(event_ms);
        if let Some(session) = self.current.get_mut(visitor) {
            return session.observe(visitor, event_ms, position, self.gap_ms);
        }
        if self.generation.due(self.current.len()) {
            self.previous = std::mem::take(&mut self.current);
            self.generation.turn();
        }
        match self.previous.remove(visitor) {
            Some(mut session) => {
                let view = session.observe(visitor, event_ms, position, self.gap_ms);
                self.current.insert(visitor.to_owned(), session);
                view
            }
            None => {
                let session = Session::start(visitor, event_ms, position);
                let view = session.view();
                self.current.insert(visitor.to_owned(), session);
                view
            }
        }
    }

    /// Per input topic, the first offset of the oldest session still open at the watermark:
    /// replaying from there rebuilds every open session exactly.
    pub fn replay_from(&self) -> HashMap<usize, i64> {
        let mut from: HashMap<usize, i64> = HashMap::new();
        for session in self.current.values().chain(self.previous.values()) {
            if session.last_ms.saturating_add(self.gap_ms) < self.watermark_ms {
                continue;
            }
            for (topic, offset) in &session.first_offsets {
                from.entry(*topic).and_modify(|o| *o = (*o).min(*offset)).or_insert(*offset);
            }
        }
        from
    }
}

/// Recently seen `messageId`s of one input partition, as keyed hashes in a fixed-size table
/// (moka's insert was its cost, and two generations of maps cost two lookups).
#[derive(Debug)]
pub struct RecentMessages {
    /// SipHash with this instance's random keys. An unkeyed hash (FNV-1a before) let a client
    /// send ids made to share a bucket, so that each pushed the others out.
    hasher: RandomState,
    seen: RecentKeys,
}

impl RecentMessages {
    pub fn new(settings: &DedupSettings) -> Self {
        Self {
            hasher: RandomState::new(),
            seen: RecentKeys::new(settings.capacity, Duration::from_secs(settings.window_secs)),
        }
    }

    /// True the first time `message_id` is seen within the window.
    pub fn first_sighting(&mut self, message_id: &str) -> bool {
        self.seen.first_sighting(self.hasher.hash_one(message_id), Stamp::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn a_gap_longer_than_the_inactivity_limit_starts_a_new_session() {
        let mut sessions = Sessions::new(&SessionSettings { inactivity_minutes: 30, max_visitors: 100 });
        let t0 = 1_700_000_000_000;
        let first = sessions.observe("anon-1", t0, (0, 10));
        let second = sessions.observe("anon-1", t0 + 29 * MINUTE, (0, 11));
        let third = sessions.observe("anon-1", t0 + 29 * MINUTE + 30 * MINUTE + 1, (0, 12));
        assert_eq!((first.sequence, second.sequence, third.sequence), (1, 2, 1));
        assert_eq!(first.id, second.id);
        assert_ne!(second.id, third.id);
        assert_eq!(third.start_ms, t0 + 59 * MINUTE + 1);
        // Other visitors do not share sessions, and ids are reproducible.
        let other = sessions.observe("anon-2", t0, (0, 13));
        assert_ne!(other.id, first.id);
        let mut again = Sessions::new(&SessionSettings { inactivity_minutes: 30, max_visitors: 100 });
        assert_eq!(again.observe("anon-1", t0, (0, 99)).id, first.id);
    }

    #[test]
    fn replay_starts_at_the_oldest_open_session() {
        let mut sessions = Sessions::new(&SessionSettings { inactivity_minutes: 30, max_visitors: 100 });
        let t0 = 1_700_000_000_000;
        sessions.observe("closed", t0, (0, 1));
        sessions.observe("open", t0 + 10 * MINUTE, (0, 5));
        sessions.observe("open", t0 + 35 * MINUTE, (1, 3));
        sessions.observe("newest", t0 + 50 * MINUTE, (0, 9));
        sessions.observe("late-start", t0 + 45 * MINUTE, (0, 8));
        let from = sessions.replay_from();
        assert_eq!(from.get(&0), Some(&5));
        assert_eq!(from.get(&1), Some(&3));
    }

    #[test]
    fn repeated_message_ids_are_dropped() {
        let mut recent = RecentMessages::new(&DedupSettings { capacity: 100, window_secs: 60 });
        assert!(recent.first_sighting("m1"));
        assert!(recent.first_sighting("m2"));
        assert!(!recent.first_sighting("m1"));
    }
}
