//! Dropping retried duplicates: recently delivered `messageId`s per source, in a bounded moka
//! cache. An id enters only once its event is safe, so a retry after a failure is never dropped.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::config::DedupConfig;

/// Keys are 64-bit hashes of (source, messageId): an eighth of the memory of the strings and no
/// allocation per lookup. A collision (odds about n²/2⁶⁵) could drop one event as a duplicate.
#[derive(Debug)]
pub struct Dedup {
    seen: Option<Cache<u64, ()>>,
    hasher: std::collections::hash_map::RandomState,
    drops: AtomicU64,
}

impl Dedup {
    pub fn new(config: &DedupConfig) -> Self {
        let seen = config.enabled.then(|| {
            Cache::builder().max_capacity(config.capacity).time_to_live(Duration::from_secs(config.ttl_secs)).build()
        });
        Self { seen, hasher: std::collections::hash_map::RandomState::new(), drops: AtomicU64::new(0) }
    }

    fn key(&self, source: &str, message_id: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        source.hash(&mut hasher);
        message_id.hash(&mut hasher);
        hasher.finish()
    }

    /// True when `source` already delivered `message_id`; counts the drop.
    pub fn is_duplicate(&self, source: &str, message_id: &str) -> bool {
        let Some(seen) = &self.seen else { return false };
        let duplicate = seen.contains_key(&self.key(source, message_id));
        if duplicate {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
        duplicate
    }

    /// Remembers ids whose events are now safe.
    pub fn remember(&self, source: &str, message_ids: impl IntoIterator<Item = String>) {
        if let Some(seen) = &self.seen {
            for id in message_ids {
                seen.insert(self.key(source, &id), ());
            }
        }
    }

    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}
