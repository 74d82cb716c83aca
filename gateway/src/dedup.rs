//! Dropping retried duplicates: recently delivered `messageId`s per source, in a fixed-size
//! table of 64-bit keys split into locked shards. An id enters only once its event is safe, so
//! a retry after a failure is never dropped.
//!
//! Not moka: its admission policy (TinyLFU) may refuse a new key once full, which is wrong for
//! dedup, where every key is new, and its insert cost about 2 µs per event on the gateway's
//! hot path (docs/performance.md). The table is [`RecentKeys`]: a lookup and an insert read
//! one bucket each, and its memory is 8 bytes per id, allocated once.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clickstream_platform::recent::{RecentKeys, Stamp};

use crate::config::DedupConfig;

/// Independent locks, so concurrent requests rarely wait on one another.
const SHARDS: usize = 16;

/// The key of one event: a 64-bit hash of (source, messageId), an eighth of the memory of the
/// strings. Its top 4 bits choose the shard and its low 20 the bucket; the slot keeps the top
/// 44, of which 40 tell apart the ids of one shard's bucket. A false duplicate, an event
/// dropped for another's id, has odds of about 16 in 2⁴⁰ (one in 70 billion) per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupKey(u64);

#[derive(Debug)]
pub struct Dedup {
    shards: Option<Box<[Mutex<RecentKeys>]>>,
    hasher: std::collections::hash_map::RandomState,
    drops: AtomicU64,
}

impl Dedup {
    pub fn new(config: &DedupConfig) -> Self {
        let per_shard = config.capacity.div_ceil(SHARDS as u64);
        let ttl = Duration::from_secs(config.ttl_secs);
        let shards = config.enabled.then(|| (0..SHARDS).map(|_| Mutex::new(RecentKeys::new(per_shard, ttl))).collect());
        Self { shards, hasher: std::collections::hash_map::RandomState::new(), drops: AtomicU64::new(0) }
    }

    /// The key of `message_id` from `source`; the same for every request.
    pub fn key(&self, source: &str, message_id: &str) -> DedupKey {
        let mut hasher = self.hasher.build_hasher();
        source.hash(&mut hasher);
        message_id.hash(&mut hasher);
        DedupKey(hasher.finish())
    }

    fn shard(&self, key: DedupKey) -> Option<&Mutex<RecentKeys>> {
        // The top bits pick the shard; the table draws its bucket from the low ones.
        self.shards.as_ref().map(|shards| &shards[(key.0 >> 60) as usize % SHARDS])
    }

    /// True when this key's event was delivered within the TTL; counts the drop.
    pub fn is_duplicate(&self, key: DedupKey) -> bool {
        let Some(shard) = self.shard(key) else { return false };
        let now = Stamp::now();
        let duplicate = shard.lock().unwrap_or_else(|p| p.into_inner()).contains(key.0, now);
        if duplicate {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
        duplicate
    }

    /// Remembers keys whose events are now safe.
    pub fn remember(&self, keys: impl IntoIterator<Item = DedupKey>) {
        let now = Stamp::now();
        for key in keys {
            let Some(shard) = self.shard(key) else { return };
            shard.lock().unwrap_or_else(|p| p.into_inner()).insert(key.0, now);
        }
    }

    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dedup(capacity: u64, ttl_secs: u64) -> Dedup {
        Dedup::new(&DedupConfig { enabled: true, ttl_secs, capacity })
    }

    #[test]
    fn remembers_per_source_only_what_was_delivered() {
        let dedup = dedup(1000, 600);
        let key = dedup.key("web", "m-1");
        assert!(!dedup.is_duplicate(key));
        dedup.remember([key]);
        assert!(dedup.is_duplicate(key));
        assert!(!dedup.is_duplicate(dedup.key("app", "m-1")), "ids are per source");
        assert!(!dedup.is_duplicate(dedup.key("web", "m-2")));
        assert_eq!(dedup.drops(), 1);
    }

    #[test]
    fn stays_within_capacity_and_forgets_the_oldest_first() {
        let capacity = 32_768;
        let dedup = dedup(capacity, 600);
        let keys: Vec<DedupKey> = (0..4 * capacity).map(|i| dedup.key("web", &i.to_string())).collect();
        dedup.remember(keys.iter().copied());
        let shards = dedup.shards.iter().flat_map(|s| s.iter());
        let (held, room) = shards
            .map(|s| s.lock().map_or((0, 0), |s| (s.len(), s.capacity())))
            .fold((0, 0), |(held, room), (h, r)| (held + h, room + r));
        assert!(held <= room && room as u64 <= capacity + (SHARDS * 16) as u64, "{held} keys held in {room} slots");
        let newest = &keys[keys.len() - capacity as usize / 4..];
        let recent = newest.iter().filter(|&&k| dedup.is_duplicate(k)).count();
        // A key is forgotten once 16 newer ones share its bucket: rare this recently.
        assert!(recent * 100 >= newest.len() * 99, "{recent} of the newest {} remembered", newest.len());
        let oldest = keys[..capacity as usize].iter().filter(|&&k| dedup.is_duplicate(k)).count();
        assert_eq!(oldest, 0, "the oldest are forgotten");
    }

    #[test]
    fn forgets_after_the_ttl_and_off_means_never_a_duplicate() {
        let dedup = dedup(1000, 0);
        let key = dedup.key("web", "m-1");
        dedup.remember([key]);
        assert!(!dedup.is_duplicate(key), "a TTL of 0 remembers nothing");
        let off = Dedup::new(&DedupConfig { enabled: false, ttl_secs: 600, capacity: 1000 });
        off.remember([key]);
        assert!(!off.is_duplicate(key));
    }
}
