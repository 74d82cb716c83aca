//! The product table's history: every product's versions ordered by valid-from time, the
//! lookup "which row was valid at time t", and the retention that bounds it. Pure data; the
//! locking, Kafka and metrics live in `products`.

use std::collections::HashMap;

use std::sync::Arc;

use super::render::product_json;
use super::ProductRow;

/// Where a version's valid-from time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Debezium's `source.ts_ms`: when the database committed the change.
    SourceTs,
    /// The Kafka timestamp of the products record.
    RecordTs,
    /// Loaded without a time (tests, examples): valid at any event time.
    Always,
    /// The end of a version read back from the changelog whose successor is not known (yet):
    /// the product had no row from then on.
    Gap,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SourceTs => "source_ts",
            Self::RecordTs => "record_ts",
            Self::Always => "always",
            Self::Gap => "gap",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::SourceTs, Self::RecordTs, Self::Always, Self::Gap].into_iter().find(|b| b.as_str() == text)
    }
}

/// Which change made a version: its valid-from time, how that time was found, and the
/// products record it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub valid_from_ms: i64,
    pub basis: Basis,
    pub partition: i32,
    pub offset: i64,
}

impl Origin {
    /// A version valid at any event time, for tables loaded without history.
    pub const ALWAYS: Self = Self { valid_from_ms: i64::MIN, basis: Basis::Always, partition: -1, offset: -1 };
}

/// One version: the row from `origin.valid_from_ms` on, or `None` when the product was
/// deleted then.
#[derive(Debug, Clone)]
pub struct Version {
    pub origin: Origin,
    pub row: Option<ProductRow>,
    /// The row as `enrichment.product` shows it, serialized once.
    json: Option<Arc<[u8]>>,
    /// The valid-to time last written to the changelog for this version, to write each end once.
    persisted_to: Option<i64>,
}

/// A superseded version to write to the changelog: valid from `origin` until `valid_to_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub id: String,
    pub origin: Origin,
    pub valid_to_ms: i64,
    pub row: ProductRow,
}

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Versions superseded longer ago than this are dropped; `None` keeps only the last change.
    pub retention_ms: Option<i64>,
    /// Most versions kept per product; the oldest go first.
    pub max_versions: usize,
}

impl History {
    pub const LATEST_ONLY: Self = Self { retention_ms: None, max_versions: 1 };
}

/// Every product's versions, oldest first.
#[derive(Debug)]
pub struct VersionedRows {
    by_id: HashMap<String, Vec<Version>, foldhash::fast::RandomState>,
    versions: usize,
    expired: u64,
    history: History,
}

impl Version {
    fn new(id: &str, origin: Origin, row: Option<ProductRow>, persisted_to: Option<i64>) -> Self {
        let json = row.as_ref().map(|row| product_json(id, row, &origin));
        Self { origin, row, json, persisted_to }
    }
}

/// A version found by a lookup: its row, where it came from, and its JSON for events.
pub type Found<'a> = (&'a ProductRow, &'a Origin, &'a Arc<[u8]>);

impl Default for VersionedRows {
    fn default() -> Self {
        Self::new(History::LATEST_ONLY)
    }
}

impl VersionedRows {
    pub fn new(history: History) -> Self {
        Self { by_id: HashMap::default(), versions: 0, expired: 0, history }
    }

    pub fn products(&self) -> usize {
        self.by_id.len()
    }

    pub fn versions(&self) -> usize {
        self.versions
    }

    /// Versions dropped by the retention or the cap so far.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    pub fn keeps_history(&self) -> bool {
        self.history.retention_ms.is_some()
    }

    /// The row valid at `at_ms`: the last version starting at or before it. None before the
    /// first version kept, and while the product was deleted.
    pub fn at(&self, id: &str, at_ms: i64) -> Option<Found<'_>> {
        let versions = self.by_id.get(id)?;
        let after = versions.partition_point(|v| v.origin.valid_from_ms <= at_ms);
        found(versions.get(after.checked_sub(1)?)?)
    }

    /// The last change's row, whatever its time.
    pub fn latest(&self, id: &str) -> Option<Found<'_>> {
        found(self.by_id.get(id)?.last()?)
    }

    /// Records a change (`row` None: a delete) and returns the versions it closed, for the
    /// changelog. A change with the valid-from time of a kept version replaces it.
    pub fn insert(&mut self, id: &str, origin: Origin, row: Option<ProductRow>, now_ms: i64) -> Vec<Closed> {
        if !self.keeps_history() {
            match row {
                Some(row) => {
                    self.by_id.insert(id.to_owned(), vec![Version::new(id, origin, Some(row), None)]);
                }
                None => {
                    self.by_id.remove(id);
                }
            }
            self.versions = self.by_id.len();
            return Vec::new();
        }
        let versions = self.by_id.entry(id.to_owned()).or_default();
        let index = versions.partition_point(|v| v.origin.valid_from_ms < origin.valid_from_ms);
        match versions.get_mut(index).filter(|v| v.origin.valid_from_ms == origin.valid_from_ms) {
            // A gap only fills an empty slot; a real change replaces a gap or an older record.
            Some(_) if origin.basis == Basis::Gap => {}
            Some(existing) => {
                let same_row = existing.row == row;
                let persisted_to = existing.persisted_to.filter(|_| same_row);
                *existing = Version::new(id, origin, row, persisted_to);
            }
            None => {
                versions.insert(index, Version::new(id, origin, row, None));
                self.versions += 1;
            }
        }
        let closed = self.closed_around(id, index, now_ms);
        self.prune_product(id, now_ms);
        closed
    }

    /// A version read back from the changelog, valid from `origin` until `valid_to_ms`.
    pub fn restore(&mut self, id: &str, origin: Origin, row: ProductRow, valid_to_ms: i64, now_ms: i64) {
        if !self.keeps_history() || valid_to_ms <= origin.valid_from_ms {
            return;
        }
        let gap = Origin { valid_from_ms: valid_to_ms, basis: Basis::Gap, partition: -1, offset: -1 };
        self.insert(id, gap, None, now_ms);
        self.insert(id, origin, Some(row), now_ms);
        if let Some(version) =
            self.by_id.get_mut(id).and_then(|vs| vs.iter_mut().find(|v| v.origin.valid_from_ms == origin.valid_from_ms))
        {
            version.persisted_to = Some(valid_to_ms);
        }
    }

    /// Debezium's truncate: every product is deleted at `origin`.
    pub fn truncate(&mut self, origin: Origin, now_ms: i64) -> Vec<Closed> {
        let ids: Vec<String> = self.by_id.keys().cloned().collect();
        ids.iter().flat_map(|id| self.insert(id, origin, None, now_ms)).collect()
    }

    /// Drops what retention no longer keeps, across every product; returns how many versions.
    pub fn prune(&mut self, now_ms: i64) -> usize {
        let before = self.versions;
        let ids: Vec<String> = self.by_id.keys().cloned().collect();
        for id in ids {
            self.prune_product(&id, now_ms);
        }
        before - self.versions
    }

    /// The rows of the versions next to `index` whose end is now known and not yet persisted.
    fn closed_around(&mut self, id: &str, index: usize, now_ms: i64) -> Vec<Closed> {
        let cutoff = self.cutoff(now_ms);
        let Some(versions) = self.by_id.get_mut(id) else { return Vec::new() };
        let mut closed = Vec::new();
        for at in [index.checked_sub(1), Some(index)].into_iter().flatten() {
            let Some(valid_to_ms) = versions.get(at + 1).map(|next| next.origin.valid_from_ms) else { continue };
            let version = &mut versions[at];
            let Some(row) = &version.row else { continue };
            if valid_to_ms <= cutoff || version.persisted_to == Some(valid_to_ms) {
                continue;
            }
            version.persisted_to = Some(valid_to_ms);
            closed.push(Closed { id: id.to_owned(), origin: version.origin, valid_to_ms, row: row.clone() });
        }
        closed
    }

    fn cutoff(&self, now_ms: i64) -> i64 {
        self.history.retention_ms.map_or(i64::MAX, |retention| now_ms.saturating_sub(retention))
    }

    fn prune_product(&mut self, id: &str, now_ms: i64) {
        let cutoff = self.cutoff(now_ms);
        let Some(versions) = self.by_id.get_mut(id) else { return };
        // A version superseded at or before the cutoff is past retention.
        let expired = versions.windows(2).take_while(|pair| pair[1].origin.valid_from_ms <= cutoff).count();
        let over_cap = versions.len().saturating_sub(expired).saturating_sub(self.history.max_versions.max(1));
        let drop = expired + over_cap;
        versions.drain(..drop);
        self.versions -= drop;
        self.expired += drop as u64;
        let deleted_long_ago = versions.first().is_some_and(|v| v.row.is_none() && v.origin.valid_from_ms <= cutoff)
            && versions.len() == 1;
        if versions.is_empty() || deleted_long_ago {
            self.versions -= versions.len();
            self.expired += versions.len() as u64;
            self.by_id.remove(id);
        }
    }
}

fn found(version: &Version) -> Option<Found<'_>> {
    Some((version.row.as_ref()?, &version.origin, version.json.as_ref()?))
}

#[cfg(test)]
#[path = "versioned_tests.rs"]
mod tests;
