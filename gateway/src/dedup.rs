//! Dropping retried duplicates: recently delivered `messageId`s per source, in a bounded moka
//! cache. An id enters only once its event is safe, so a retry after a failure is never dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::config::DedupConfig;

#[derive(Debug)]
pub struct Dedup {
    seen: Option<Cache<(Arc<str>, String), ()>>,
    drops: AtomicU64,
}

impl Dedup {
    pub fn new(config: &DedupConfig) -> Self {
        let seen = config.enabled.then(|| {
            Cache::builder().max_capacity(config.capacity).time_to_live(Duration::from_secs(config.ttl_secs)).build()
        });
        Self { seen, drops: AtomicU64::new(0) }
    }

    /// True when `source` already delivered `message_id`; counts the drop.
    pub fn is_duplicate(&self, source: &Arc<str>, message_id: &str) -> bool {
        let Some(seen) = &self.seen else { return false };
        let duplicate = seen.contains_key(&(source.clone(), message_id.to_owned()));
        if duplicate {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
        duplicate
    }

    /// Remembers ids whose events are now safe.
    pub fn remember(&self, source: &Arc<str>, message_ids: impl IntoIterator<Item = String>) {
        if let Some(seen) = &self.seen {
            for id in message_ids {
                seen.insert((source.clone(), id), ());
            }
        }
    }

    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}
