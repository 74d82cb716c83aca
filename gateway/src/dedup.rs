//! Dropping retried duplicates: recently delivered `messageId`s per source, in bounded,
//! sharded two-generation hash sets. An id enters only once its event is safe, so a retry
//! after a failure is never dropped.
//!
//! Not moka: its admission policy (TinyLFU) may refuse a new key once full, which is wrong for
//! dedup, where every key is new, and its insert cost about 2 µs per event on the gateway's
//! hot path (docs/performance.md). Here a lookup and an insert are a hash-map probe each.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clickstream_platform::hashed::HashedKeyMap;

use crate::config::DedupConfig;

/// Independent locks, so concurrent requests rarely wait on one another.
const SHARDS: usize = 16;

/// The key of one event: a 64-bit hash of (source, messageId), an eighth of the memory of the
/// strings. A collision (odds about n²/2⁶⁵) could drop one event as a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupKey(u64);

#[derive(Debug)]
pub struct Dedup {
    shards: Option<Box<[Mutex<Shard>]>>,
    hasher: std::collections::hash_map::RandomState,
    drops: AtomicU64,
    started: Instant,
    ttl: Duration,
    /// Most keys one generation of one shard holds: the shards' two generations together
    /// hold `capacity` at most.
    generation_size: usize,
}

/// Keys are hashes already: no need to hash them again.
type Seen = HashedKeyMap<Duration>;

/// One shard: the keys of the current generation and of the one before. When the current one
/// is full, or older than the TTL, it becomes the previous one and the previous one is
/// dropped, so the oldest keys go first and memory stays bounded.
#[derive(Debug, Default)]
struct Shard {
    current: Seen,
    previous: Seen,
    /// When `current` began, since the set was made.
    current_since: Duration,
}

impl Dedup {
    pub fn new(config: &DedupConfig) -> Self {
        let generation_size = (config.capacity as usize / (2 * SHARDS)).max(1);
        let shards = config.enabled.then(|| (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect());
        Self {
            shards,
            hasher: std::collections::hash_map::RandomState::new(),
            drops: AtomicU64::new(0),
            started: Instant::now(),
            ttl: Duration::from_secs(config.ttl_secs),
            generation_size,
        }
    }

    /// The key of `message_id` from `source`; the same for every request.
    pub fn key(&self, source: &str, message_id: &str) -> DedupKey {
        let mut hasher = self.hasher.build_hasher();
        source.hash(&mut hasher);
        message_id.hash(&mut hasher);
        DedupKey(hasher.finish())
    }

    fn shard(&self, key: DedupKey) -> Option<&Mutex<Shard>> {
        // The low bits pick the map's bucket; the high ones the shard.
        self.shards.as_ref().map(|shards| &shards[(key.0 >> 60) as usize % SHARDS])
    }

    /// True when this key's event was delivered within the TTL; counts the drop.
    pub fn is_duplicate(&self, key: DedupKey) -> bool {
        let Some(shard) = self.shard(key) else { return false };
        let now = self.started.elapsed();
        let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        let remembered = shard.current.get(&key.0).or_else(|| shard.previous.get(&key.0));
        let duplicate = remembered.is_some_and(|&at| now.saturating_sub(at) < self.ttl);
        if duplicate {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
        duplicate
    }

    /// Remembers keys whose events are now safe.
    pub fn remember(&self, keys: impl IntoIterator<Item = DedupKey>) {
        if self.shards.is_none() {
            return;
        }
        let now = self.started.elapsed();
        for key in keys {
            let Some(shard) = self.shard(key) else { return };
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            if shard.current.len() >= self.generation_size || now.saturating_sub(shard.current_since) >= self.ttl {
                shard.previous = std::mem::take(&mut shard.current);
                shard.current_since = now;
            }
            shard.current.insert(key.0, now);
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
        let capacity = 3_200;
        let dedup = dedup(capacity, 600);
        let keys: Vec<DedupKey> = (0..10 * capacity).map(|i| dedup.key("web", &i.to_string())).collect();
        dedup.remember(keys.iter().copied());
        let held: usize = dedup
            .shards
            .iter()
            .flat_map(|s| s.iter())
            .map(|s| s.lock().map_or(0, |s| s.current.len() + s.previous.len()))
            .sum();
        assert!(held as u64 <= capacity, "{held} keys held");
        let recent = keys[keys.len() - capacity as usize / 4..].iter().filter(|&&k| dedup.is_duplicate(k)).count();
        assert_eq!(recent as u64, capacity / 4, "the newest quarter is all remembered");
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
