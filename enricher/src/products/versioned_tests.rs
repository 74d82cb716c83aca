//! Unit tests of the versioned product rows: lookups by event time, retention, the cap, the
//! changelog's closed versions and restoring from them.

use std::sync::Arc;

use serde_json::json;

use super::*;

const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_800_000_000_000;

fn row(price: f64) -> ProductRow {
    Arc::new(json!({"id": "p1", "price": price}).as_object().cloned().unwrap_or_default())
}

fn origin(valid_from_ms: i64, offset: i64) -> Origin {
    Origin { valid_from_ms, basis: Basis::RecordTs, partition: 0, offset }
}

fn history(retention_hours: i64) -> VersionedRows {
    VersionedRows::new(History { retention_ms: Some(retention_hours * HOUR), max_versions: 100 })
}

fn price_at(rows: &VersionedRows, at_ms: i64) -> Option<f64> {
    rows.at("p1", at_ms).and_then(|(row, _, _)| row["price"].as_f64())
}

#[test]
fn the_row_valid_at_the_event_time_and_never_a_later_one() {
    let mut rows = history(24);
    rows.insert("p1", origin(NOW - 3 * HOUR, 0), Some(row(10.0)), NOW);
    rows.insert("p1", origin(NOW - HOUR, 1), Some(row(12.0)), NOW);
    assert_eq!(price_at(&rows, NOW - 4 * HOUR), None, "before the first version");
    assert_eq!(price_at(&rows, NOW - 3 * HOUR), Some(10.0), "valid from its start, inclusive");
    assert_eq!(price_at(&rows, NOW - 2 * HOUR), Some(10.0));
    assert_eq!(price_at(&rows, NOW - HOUR - 1), Some(10.0));
    assert_eq!(price_at(&rows, NOW), Some(12.0));
    assert_eq!(rows.at("p1", NOW - 2 * HOUR).map(|(_, o, _)| o.offset), Some(0));
    assert_eq!(rows.latest("p1").map(|(r, _, _)| r["price"].clone()), Some(json!(12.0)));
    assert_eq!((rows.products(), rows.versions()), (1, 2));
}

#[test]
fn out_of_order_changes_land_in_time_order() {
    let mut rows = history(24);
    rows.insert("p1", origin(NOW - HOUR, 1), Some(row(12.0)), NOW);
    let closed = rows.insert("p1", origin(NOW - 3 * HOUR, 0), Some(row(10.0)), NOW);
    assert_eq!(price_at(&rows, NOW - 2 * HOUR), Some(10.0));
    assert_eq!(price_at(&rows, NOW), Some(12.0));
    assert_eq!(closed.len(), 1, "the late change is already superseded: {closed:?}");
    assert_eq!((closed[0].origin.offset, closed[0].valid_to_ms), (0, NOW - HOUR));
}

#[test]
fn a_delete_ends_the_row_until_the_next_change() {
    let mut rows = history(24);
    rows.insert("p1", origin(NOW - 3 * HOUR, 0), Some(row(10.0)), NOW);
    rows.insert("p1", origin(NOW - 2 * HOUR, 1), None, NOW);
    rows.insert("p1", origin(NOW - HOUR, 2), Some(row(14.0)), NOW);
    assert_eq!(price_at(&rows, NOW - 150 * 60_000), Some(10.0));
    assert_eq!(price_at(&rows, NOW - 90 * 60_000), None);
    assert_eq!(price_at(&rows, NOW), Some(14.0));
    rows.truncate(origin(NOW - 1, 3), NOW);
    assert_eq!(price_at(&rows, NOW), None);
    assert_eq!(price_at(&rows, NOW - 30 * 60_000), Some(14.0));
}

#[test]
fn retention_drops_versions_superseded_before_the_cutoff() {
    let mut rows = history(2);
    rows.insert("p1", origin(NOW - 5 * HOUR, 0), Some(row(8.0)), NOW);
    rows.insert("p1", origin(NOW - 4 * HOUR, 1), Some(row(9.0)), NOW);
    rows.insert("p1", origin(NOW - HOUR, 2), Some(row(10.0)), NOW);
    // 8.0 ended 4 h ago (dropped); 9.0 ended 1 h ago (kept, though it began 4 h ago).
    assert_eq!(price_at(&rows, NOW - 270 * 60_000), None);
    assert_eq!(price_at(&rows, NOW - 3 * HOUR), Some(9.0));
    assert_eq!(rows.versions(), 2);
    // An hour and a half later 9.0 has been superseded for 2.5 h.
    assert_eq!(rows.prune(NOW + 90 * 60_000), 1);
    assert_eq!(price_at(&rows, NOW - 3 * HOUR), None);
    assert_eq!(price_at(&rows, NOW), Some(10.0), "the current version stays however old");
    rows.insert("p2", origin(NOW - 5 * HOUR, 3), Some(row(1.0)), NOW);
    rows.insert("p2", origin(NOW - 4 * HOUR, 4), None, NOW);
    assert_eq!(rows.products(), 1, "a product deleted before the cutoff is gone");
}

#[test]
fn the_cap_drops_the_oldest_versions() {
    let mut rows = VersionedRows::new(History { retention_ms: Some(24 * HOUR), max_versions: 2 });
    for (index, price) in [1.0, 2.0, 3.0].into_iter().enumerate() {
        let offset = i64::try_from(index).unwrap_or_default();
        rows.insert("p1", origin(NOW - (3 - offset) * HOUR, offset), Some(row(price)), NOW);
    }
    assert_eq!(rows.versions(), 2);
    assert_eq!(price_at(&rows, NOW - 150 * 60_000), None);
    assert_eq!(price_at(&rows, NOW - 90 * 60_000), Some(2.0));
}

#[test]
fn latest_only_keeps_the_last_change_whatever_its_time() {
    let mut rows = VersionedRows::new(History::LATEST_ONLY);
    rows.insert("p1", origin(NOW, 0), Some(row(10.0)), NOW);
    rows.insert("p1", origin(NOW - HOUR, 1), Some(row(12.0)), NOW);
    assert_eq!(rows.latest("p1").map(|(r, _, _)| r["price"].clone()), Some(json!(12.0)));
    assert_eq!(rows.versions(), 1);
    rows.insert("p1", origin(NOW, 2), None, NOW);
    assert_eq!((rows.products(), rows.versions()), (0, 0));
}

#[test]
fn each_end_is_written_once_and_restoring_does_not_write_it_again() {
    let mut rows = history(24);
    assert!(rows.insert("p1", origin(NOW - 3 * HOUR, 0), Some(row(10.0)), NOW).is_empty());
    let closed = rows.insert("p1", origin(NOW - HOUR, 1), Some(row(12.0)), NOW);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].row["price"], 10.0);
    assert!(rows.insert("p1", origin(NOW - HOUR, 1), Some(row(12.0)), NOW).is_empty(), "replayed change");

    // After a restart: the changelog's closed version, then what is left of the products topic.
    let mut rebuilt = history(24);
    rebuilt.restore("p1", closed[0].origin, closed[0].row.clone(), closed[0].valid_to_ms, NOW);
    assert_eq!(price_at(&rebuilt, NOW - 2 * HOUR), Some(10.0));
    assert_eq!(price_at(&rebuilt, NOW), None, "until the successor is known, the row ended");
    let again = rebuilt.insert("p1", origin(NOW - HOUR, 1), Some(row(12.0)), NOW);
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(price_at(&rebuilt, NOW), Some(12.0));
    assert_eq!(rebuilt.versions(), 2);
    // Restoring after the successor is known does not put a gap over it.
    rebuilt.restore("p1", closed[0].origin, closed[0].row.clone(), closed[0].valid_to_ms, NOW);
    assert_eq!(price_at(&rebuilt, NOW), Some(12.0));
}
