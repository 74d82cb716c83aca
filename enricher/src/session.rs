//! Sessionization per visitor in event time, with moka holding the state, plus the bounded
//! `messageId` window that drops repeats the gateway's best-effort dedup let through.

use std::collections::HashMap;
use std::time::Duration;

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
#[derive(Debug)]
pub struct Sessions {
    cache: moka::sync::Cache<String, Session>,
    gap_ms: i64,
    watermark_ms: i64,
}

impl Sessions {
    pub fn new(settings: &SessionSettings) -> Self {
        let gap = Duration::from_secs(settings.inactivity_minutes.saturating_mul(60));
        let cache = moka::sync::Cache::builder()
            .max_capacity(settings.max_visitors)
            // Wall-clock idleness only frees memory; the session rule itself uses event time.
            .time_to_idle(gap + Duration::from_secs(300))
            .build();
        Self { cache, gap_ms: i64::try_from(gap.as_millis()).unwrap_or(i64::MAX), watermark_ms: i64::MIN }
    }

    /// Places one event of `visitor` at `event_ms` in a session.
    pub fn observe(&mut self, visitor: &str, event_ms: i64, position: InputPosition) -> SessionView {
        self.watermark_ms = self.watermark_ms.max(event_ms);
        let session = match self.cache.get(visitor) {
            Some(mut session) if event_ms.saturating_sub(session.last_ms) <= self.gap_ms => {
                session.sequence += 1;
                session.last_ms = session.last_ms.max(event_ms);
                if !session.first_offsets.iter().any(|(topic, _)| *topic == position.0) {
                    session.first_offsets.push(position);
                }
                session
            }
            _ => Session {
                id: format!("{:016x}", stable_hash(&[visitor.as_bytes(), &event_ms.to_be_bytes()])),
                start_ms: event_ms,
                last_ms: event_ms,
                sequence: 1,
                first_offsets: vec![position],
            },
        };
        let view = SessionView { id: session.id.clone(), sequence: session.sequence, start_ms: session.start_ms };
        self.cache.insert(visitor.to_owned(), session);
        view
    }

    /// Per input topic, the first offset of the oldest session still open at the watermark:
    /// replaying from there rebuilds every open session exactly.
    pub fn replay_from(&self) -> HashMap<usize, i64> {
        let mut from: HashMap<usize, i64> = HashMap::new();
        for (_, session) in &self.cache {
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

/// Recently seen `messageId`s of one input partition.
#[derive(Debug)]
pub struct RecentMessages {
    seen: moka::sync::Cache<u64, ()>,
}

impl RecentMessages {
    pub fn new(settings: &DedupSettings) -> Self {
        let seen = moka::sync::Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_live(Duration::from_secs(settings.window_secs))
            .build();
        Self { seen }
    }

    /// True the first time `message_id` is seen within the window.
    pub fn first_sighting(&self, message_id: &str) -> bool {
        let key = stable_hash(&[message_id.as_bytes()]);
        let entry = self.seen.entry(key).or_insert(());
        entry.is_fresh()
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
        let recent = RecentMessages::new(&DedupSettings { capacity: 100, window_secs: 60 });
        assert!(recent.first_sighting("m1"));
        assert!(recent.first_sighting("m2"));
        assert!(!recent.first_sighting("m1"));
    }
}
