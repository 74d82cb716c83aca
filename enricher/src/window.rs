//! Tumbling event-time windows of product activity for one partition of the repartition
//! topic: counts, quantities and revenue per (product, window, event), closed by the partition's
//! watermark after a grace period, with late events counted in `late_dropped`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// One product line of one event, as the enricher writes it to the repartition topic. Its
/// text is borrowed from the record it is read from (see `pipeline::activities`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity<'a> {
    pub product_id: Cow<'a, str>,
    pub event: Cow<'a, str>,
    pub event_ms: i64,
    pub quantity: f64,
    pub revenue: f64,
    /// The input record the activity came from. It travels in the record itself rather than
    /// in headers, because librdkafka allocates every header twice per record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ActivitySource<'a>>,
}

/// Where an activity came from: a replayed input record repeats its position, so the
/// aggregator can drop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySource<'a> {
    pub topic: Cow<'a, str>,
    pub partition: i32,
    pub offset: i64,
    /// The line item's place among its event's products: one record yields an activity per
    /// item, all at the same offset. 0 in records of versions that did not write it.
    #[serde(default)]
    pub item: u32,
}

/// One window's totals for one product and event, as written to the aggregates topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowRow {
    pub product_id: String,
    pub event: String,
    pub window_start: String,
    pub window_end: String,
    pub count: u64,
    pub quantity: f64,
    pub revenue: f64,
    /// Events for this window that arrived after it closed, and so are not in the totals.
    pub late_dropped: u64,
}

impl WindowRow {
    /// The compaction key: a re-emitted window replaces its earlier row.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.product_id, self.window_start, self.event)
    }
}

#[derive(Debug, Clone, Default)]
struct Totals {
    count: u64,
    quantity: f64,
    revenue: f64,
    late_dropped: u64,
    /// Offset of the first record counted, so progress is only committed past closed windows.
    first_offset: i64,
}

/// What one activity record did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Counted in an open window; `closed` are rows of windows the watermark has now closed.
    Counted { closed: Vec<WindowRow> },
    /// Its window had closed; the row re-emitted with the higher `late_dropped`, if the closed
    /// window is still remembered.
    Late { reemit: Option<WindowRow> },
}

type GroupKey = (String, String);

/// Windows of one repartition partition.
#[derive(Debug)]
pub struct Windows {
    size_ms: i64,
    grace_ms: i64,
    watermark_ms: i64,
    open: BTreeMap<i64, HashMap<GroupKey, Totals>>,
    /// Recently closed windows, kept so late events can update their row.
    closed: BTreeMap<i64, HashMap<GroupKey, Totals>>,
}

/// How many closed windows are remembered for late-event bookkeeping.
const CLOSED_WINDOWS_KEPT: usize = 60;

impl Windows {
    /// `watermark_ms` restores the event-time watermark a previous owner reached.
    pub fn new(size_ms: i64, grace_ms: i64, watermark_ms: Option<i64>) -> Self {
        Self {
            size_ms: size_ms.max(1),
            grace_ms: grace_ms.max(0),
            watermark_ms: watermark_ms.unwrap_or(i64::MIN),
            open: BTreeMap::new(),
            closed: BTreeMap::new(),
        }
    }

    pub fn watermark_ms(&self) -> Option<i64> {
        (self.watermark_ms != i64::MIN).then_some(self.watermark_ms)
    }

    /// The offset from which a restart must re-read to rebuild every open window.
    pub fn low_water_offset(&self) -> Option<i64> {
        self.open.values().flat_map(HashMap::values).map(|t| t.first_offset).min()
    }

    fn closes_at(&self, start: i64) -> i64 {
        start.saturating_add(self.size_ms).saturating_add(self.grace_ms)
    }

    /// Adds one record read at `offset`.
    pub fn add(&mut self, activity: &Activity<'_>, offset: i64) -> Outcome {
        let start = activity.event_ms.div_euclid(self.size_ms) * self.size_ms;
        let key = (activity.product_id.to_string(), activity.event.to_string());
        if self.closes_at(start) <= self.watermark_ms {
            let reemit = self.closed.get_mut(&start).and_then(|group| group.get_mut(&key)).map(|totals| {
                totals.late_dropped += 1;
                totals.clone()
            });
            return Outcome::Late { reemit: reemit.map(|t| self.row(start, &key, &t)) };
        }
        let totals = self
            .open
            .entry(start)
            .or_default()
            .entry(key)
            .or_insert_with(|| Totals { first_offset: offset, ..Totals::default() });
        totals.count += 1;
        totals.quantity += activity.quantity;
        totals.revenue += activity.revenue;
        self.watermark_ms = self.watermark_ms.max(activity.event_ms);
        Outcome::Counted { closed: self.close_due() }
    }

    fn close_due(&mut self) -> Vec<WindowRow> {
        let mut rows = Vec::new();
        while let Some((&start, _)) = self.open.first_key_value() {
            if self.closes_at(start) > self.watermark_ms {
                break;
            }
            let Some((start, group)) = self.open.pop_first() else { break };
            let mut keys: Vec<&GroupKey> = group.keys().collect();
            keys.sort();
            rows.extend(keys.into_iter().map(|key| self.row(start, key, &group[key])));
            self.closed.insert(start, group);
            while self.closed.len() > CLOSED_WINDOWS_KEPT {
                self.closed.pop_first();
            }
        }
        rows
    }

    fn row(&self, start: i64, (product_id, event): &GroupKey, totals: &Totals) -> WindowRow {
        let time = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms).map(clickstream_schema::format_timestamp).unwrap_or_default()
        };
        WindowRow {
            product_id: product_id.clone(),
            event: event.clone(),
            window_start: time(start),
            window_end: time(start + self.size_ms),
            count: totals.count,
            quantity: totals.quantity,
            revenue: (totals.revenue * 100.0).round() / 100.0,
            late_dropped: totals.late_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_040_000; // a window start for one-minute windows

    fn view(product: &str, ms: i64) -> Activity<'static> {
        Activity {
            product_id: product.to_owned().into(),
            event: "Product Viewed".into(),
            event_ms: ms,
            quantity: 1.0,
            revenue: 0.0,
            source: None,
        }
    }

    fn closed(outcome: Outcome) -> Vec<WindowRow> {
        match outcome {
            Outcome::Counted { closed } => closed,
            Outcome::Late { .. } => panic!("unexpectedly late"),
        }
    }

    #[test]
    fn in_order_late_within_grace_and_too_late() {
        let mut windows = Windows::new(60_000, 10_000, None);
        assert!(closed(windows.add(&view("p1", T0 + 1_000), 0)).is_empty());
        assert!(closed(windows.add(&view("p1", T0 + 2_000), 1)).is_empty());
        // Next window, but within the grace period: the first window stays open.
        assert!(closed(windows.add(&view("p2", T0 + 65_000), 2)).is_empty());
        // Late, but within grace: still counted.
        assert!(closed(windows.add(&view("p1", T0 + 59_000), 3)).is_empty());
        assert_eq!(windows.low_water_offset(), Some(0));
        // The watermark passes end + grace: the first window closes with three views.
        let rows = closed(windows.add(&view("p2", T0 + 70_000), 4));
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].product_id.as_str(), rows[0].count, rows[0].late_dropped), ("p1", 3, 0));
        assert_eq!(rows[0].window_start, "2023-11-14T22:14:00.000Z");
        assert_eq!(rows[0].key(), "p1|2023-11-14T22:14:00.000Z|Product Viewed");
        assert_eq!(windows.low_water_offset(), Some(2));
        // Too late: not counted, and the closed row comes back with late_dropped = 1.
        match windows.add(&view("p1", T0 + 30_000), 5) {
            Outcome::Late { reemit: Some(row) } => assert_eq!((row.count, row.late_dropped), (3, 1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revenue_sums_and_a_restored_watermark_drops_old_events() {
        let mut windows = Windows::new(60_000, 0, None);
        let buy = |ms| Activity { event: "Order Completed".into(), revenue: 10.1, quantity: 2.0, ..view("p1", ms) };
        closed(windows.add(&buy(T0), 0));
        closed(windows.add(&buy(T0 + 1), 1));
        let rows = closed(windows.add(&view("p9", T0 + 60_000), 2));
        assert_eq!((rows[0].count, rows[0].quantity, rows[0].revenue), (2, 4.0, 20.2));
        let mut restored = Windows::new(60_000, 0, windows.watermark_ms());
        assert!(matches!(restored.add(&buy(T0 + 5), 0), Outcome::Late { reemit: None }));
    }
}
