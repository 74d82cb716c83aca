//! The product table: the compacted `products` topic read into memory (the table side of the
//! table–stream duality), bootstrapped to the topic's end before clicks are processed and then
//! kept current by a follower thread. With the event-time join it keeps each product's
//! versions, so an event joins the row that was valid when it happened.

mod change;
mod changelog;
mod debezium;
mod follow;
mod load;
mod render;
mod versioned;

pub use change::{parse_change, parse_record, ChangeError, ParsedChange, ProductChange};
pub use follow::{bootstrap, TableError, TableFollower, TableTopics};
pub use load::{load_catalog, parse_catalog, publish_catalog, read_catalog, CatalogError, VALID_SINCE_THE_EPOCH_MS};
pub use versioned::{Basis, Closed, History, Origin, VersionedRows};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::{Map, Value};

use crate::config::{ProductJoin, ProductTableSettings};

/// One product's columns, shared with the events that joined it.
pub type ProductRow = Arc<Map<String, Value>>;

/// A joined row and the version it came from.
#[derive(Debug, Clone)]
pub struct Joined {
    pub row: ProductRow,
    pub origin: Origin,
    /// The row as `enrichment.product` shows it: columns, `id`, `_version`.
    pub json: Arc<[u8]>,
}

/// The table's size and what happened to it, for metrics and tests.
#[derive(Debug, Default)]
pub struct ProductTableStats {
    /// Products with a kept version (gauge).
    pub products: AtomicU64,
    /// Versions kept over all products, the table's memory in rows (gauge).
    pub versions: AtomicU64,
    pub changes_applied: AtomicU64,
    /// Records of the products or changelog topic that could not be read.
    pub bad_changes: AtomicU64,
    /// Product columns kept encoded: Debezium precise decimals that arrived without the schema
    /// wrapper (`schemas.enable=false`), or whose value did not match their schema.
    pub undecodable_columns: AtomicU64,
    /// Versions dropped by the retention or the per-product cap.
    pub versions_expired: AtomicU64,
    /// Superseded versions written to the changelog topic.
    pub changelog_written: AtomicU64,
    /// Versions read back from the changelog topic at start.
    pub changelog_restored: AtomicU64,
}

/// Product versions by id, shared between the follower thread and the processors.
#[derive(Debug, Clone)]
pub struct ProductTable {
    rows: Arc<RwLock<VersionedRows>>,
    join: ProductJoin,
    stats: Arc<ProductTableStats>,
}

impl Default for ProductTable {
    /// A latest-row table without history, as tests and examples load one.
    fn default() -> Self {
        Self { rows: Arc::default(), join: ProductJoin::Latest, stats: Arc::default() }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ProductTable {
    pub fn new(settings: &ProductTableSettings, stats: Arc<ProductTableStats>) -> Self {
        let history = if settings.versioned() {
            History {
                retention_ms: Some(settings.history_retention_ms()),
                max_versions: usize::try_from(settings.max_versions_per_product).unwrap_or(usize::MAX),
            }
        } else {
            History::LATEST_ONLY
        };
        Self { rows: Arc::new(RwLock::new(VersionedRows::new(history))), join: settings.join, stats }
    }

    /// The current row: the last change applied.
    pub fn get(&self, id: &str) -> Option<ProductRow> {
        self.read().latest(id).map(|(row, _, _)| row.clone())
    }

    /// The row an event at `event_ms` joins: the one valid then, or the current one with the
    /// latest-row join.
    pub fn join(&self, id: &str, event_ms: i64) -> Option<Joined> {
        let rows = self.read();
        let found = match self.join {
            ProductJoin::EventTime => rows.at(id, event_ms),
            ProductJoin::Latest => rows.latest(id),
        };
        found.map(|(row, origin, json)| Joined { row: row.clone(), origin: *origin, json: json.clone() })
    }

    /// Products with a row or a kept version.
    pub fn len(&self) -> usize {
        self.read().products()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Versions kept over all products.
    pub fn versions(&self) -> usize {
        self.read().versions()
    }

    pub fn stats(&self) -> &ProductTableStats {
        &self.stats
    }

    /// Whether the table keeps history, and so reads and writes the changelog.
    pub fn versioned(&self) -> bool {
        self.read().keeps_history()
    }

    /// Changes applied since start, for metrics and tests.
    pub fn changes_applied(&self) -> u64 {
        self.stats.changes_applied.load(Ordering::Relaxed)
    }

    /// Records of the products topic that could not be read.
    pub fn bad_changes(&self) -> u64 {
        self.stats.bad_changes.load(Ordering::Relaxed)
    }

    /// Applies a change valid at any event time (a catalog without history).
    pub fn apply(&self, change: ProductChange) {
        self.apply_at(change, Origin::ALWAYS);
    }

    /// Applies a change valid from `origin`; returns the versions it superseded.
    pub fn apply_at(&self, change: ProductChange, origin: Origin) -> Vec<Closed> {
        let now = now_ms();
        let closed = {
            let mut rows = self.write();
            match change {
                ProductChange::Upsert { id, row } => rows.insert(&id, origin, Some(Arc::new(row)), now),
                ProductChange::Delete { id } => rows.insert(&id, origin, None, now),
                ProductChange::Truncate => rows.truncate(origin, now),
                ProductChange::Ignore => return Vec::new(),
            }
        };
        self.stats.changes_applied.fetch_add(1, Ordering::Relaxed);
        self.publish_sizes();
        closed
    }

    /// Applies one products record: valid from Debezium's `source.ts_ms` when it has one, its
    /// Kafka timestamp otherwise.
    pub fn apply_record(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        (partition, offset): (i32, i64),
        record_ts_ms: Option<i64>,
    ) -> Vec<Closed> {
        match parse_record(key, value) {
            Ok(ParsedChange { change, source_ts_ms, undecodable_columns }) => {
                self.count_undecodable(undecodable_columns, partition, offset);
                let (valid_from_ms, basis) = match source_ts_ms {
                    Some(ts) => (ts, Basis::SourceTs),
                    None => (record_ts_ms.unwrap_or_else(now_ms), Basis::RecordTs),
                };
                self.apply_at(change, Origin { valid_from_ms, basis, partition, offset })
            }
            Err(error) => {
                self.stats.bad_changes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, partition, offset, "skipping unreadable product record");
                Vec::new()
            }
        }
    }

    /// Counts columns kept encoded, warning on the first: the prices they hold are base64 text.
    fn count_undecodable(&self, columns: u32, partition: i32, offset: i64) {
        if columns == 0 {
            return;
        }
        let before = self.stats.undecodable_columns.fetch_add(u64::from(columns), Ordering::Relaxed);
        if before == 0 {
            tracing::warn!(
                columns,
                partition,
                offset,
                "product record holds Debezium precise decimals that cannot be decoded without the \
                 schema wrapper; set the connector's decimal.handling.mode=string (or double), or \
                 value.converter.schemas.enable=true; enricher_product_undecodable_columns_total \
                 counts them"
            );
        }
    }

    /// Puts back a version read from the changelog.
    pub fn restore(&self, id: &str, origin: Origin, row: Map<String, Value>, valid_to_ms: i64) {
        self.write().restore(id, origin, Arc::new(row), valid_to_ms, now_ms());
        self.stats.changelog_restored.fetch_add(1, Ordering::Relaxed);
        self.publish_sizes();
    }

    /// Drops the versions retention no longer keeps.
    pub fn prune(&self) {
        self.write().prune(now_ms());
        self.publish_sizes();
    }

    fn publish_sizes(&self) {
        let rows = self.read();
        self.stats.versions.store(rows.versions() as u64, Ordering::Relaxed);
        self.stats.products.store(rows.products() as u64, Ordering::Relaxed);
        self.stats.versions_expired.store(rows.expired(), Ordering::Relaxed);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, VersionedRows> {
        self.rows.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, VersionedRows> {
        self.rows.write().unwrap_or_else(PoisonError::into_inner)
    }
}
