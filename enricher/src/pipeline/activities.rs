//! Product activities on their way to the repartition topic, gathered per target partition
//! into one record (a JSON array) while they fall in one window, so the second Kafka round
//! trip costs a record per batch rather than per line item.

use std::collections::BTreeMap;

use crate::window::Activity;

/// Most activities in one repartition record: about 200 bytes each.
pub const BATCH_MAX: usize = 500;

/// Activities gathered for one repartition partition.
#[derive(Debug)]
struct Batch {
    /// The window every activity of the batch falls in (its start over the window length).
    window: i64,
    count: usize,
    /// `[` and the activities so far, comma-separated.
    json: Vec<u8>,
}

/// A batch ready to send.
#[derive(Debug)]
pub struct Closed {
    pub partition: i32,
    pub count: usize,
    /// A JSON array of activities.
    pub json: Vec<u8>,
}

/// The open batch of each repartition partition.
///
/// A batch holds activities of one window only. A window's activities are then all counted or
/// all late together, as they would be one record each, and the record's offset, which keeps
/// the repartition topic uncommitted while its window is open, means the same for all of them.
/// Activities keep their order per partition, which the aggregator's replay check relies on.
#[derive(Debug)]
pub struct ActivityBatches {
    window_ms: i64,
    open: BTreeMap<i32, Batch>,
}

impl ActivityBatches {
    pub fn new(window_ms: i64) -> Self {
        Self { window_ms: window_ms.max(1), open: BTreeMap::new() }
    }

    /// Adds `activity` to `partition`'s batch, and returns that batch first, to be sent, when
    /// `activity` falls in another window or the batch is full.
    pub fn push(&mut self, partition: i32, activity: &Activity) -> Option<Closed> {
        let window = activity.event_ms.div_euclid(self.window_ms);
        let closed = match self.open.get(&partition) {
            Some(batch) if batch.window != window || batch.count >= BATCH_MAX => self.close(partition),
            _ => None,
        };
        let batch = self.open.entry(partition).or_insert_with(|| Batch { window, count: 0, json: vec![b'['] });
        if batch.count > 0 {
            batch.json.push(b',');
        }
        // Serializing plain fields into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut batch.json, activity);
        batch.count += 1;
        closed
    }

    /// Every open batch, to be sent before a commit records the input they came from.
    pub fn drain(&mut self) -> Vec<Closed> {
        let partitions: Vec<i32> = self.open.keys().copied().collect();
        partitions.into_iter().filter_map(|partition| self.close(partition)).collect()
    }

    /// Drops every open batch: the pipeline failed, and its input will be read again.
    pub fn clear(&mut self) {
        self.open.clear();
    }

    fn close(&mut self, partition: i32) -> Option<Closed> {
        let mut batch = self.open.remove(&partition)?;
        batch.json.push(b']');
        Some(Closed { partition, count: batch.count, json: batch.json })
    }
}

/// The activities of a repartition record: a batch's array, or the single object an older
/// version wrote per record.
pub fn parse(payload: &[u8]) -> Vec<Activity> {
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(payload).unwrap_or_default(),
        _ => serde_json::from_slice(payload).map(|one| vec![one]).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(product: &str, event_ms: i64) -> Activity {
        Activity {
            product_id: product.to_owned(),
            event: "Product Viewed".to_owned(),
            event_ms,
            quantity: 1.0,
            revenue: 0.0,
            source: None,
        }
    }

    fn ids(closed: &Closed) -> Vec<String> {
        parse(&closed.json).into_iter().map(|a| a.product_id).collect()
    }

    #[test]
    fn batches_close_at_a_window_change_when_full_and_when_drained() {
        let mut batches = ActivityBatches::new(60_000);
        assert!(batches.push(0, &activity("a", 1_000)).is_none());
        assert!(batches.push(1, &activity("b", 2_000)).is_none());
        assert!(batches.push(0, &activity("c", 59_999)).is_none());
        let closed = batches.push(0, &activity("d", 60_000)).expect("another window closes the batch");
        assert_eq!((closed.partition, closed.count, ids(&closed)), (0, 2, vec!["a".to_owned(), "c".to_owned()]));
        let drained = batches.drain();
        assert_eq!(
            drained.iter().map(|c| (c.partition, ids(c))).collect::<Vec<_>>(),
            [(0, vec!["d".to_owned()]), (1, vec!["b".to_owned()])]
        );
        assert!(batches.drain().is_empty());

        for n in 0..BATCH_MAX {
            assert!(batches.push(2, &activity(&n.to_string(), 5)).is_none());
        }
        let full = batches.push(2, &activity("next", 5)).expect("a full batch closes");
        assert_eq!(full.count, BATCH_MAX);
        assert_eq!(parse(&full.json).len(), BATCH_MAX);
        batches.clear();
        assert!(batches.drain().is_empty());
    }

    #[test]
    fn a_record_of_an_older_version_holds_one_activity() {
        let one = serde_json::to_vec(&activity("p1", 7)).expect("json");
        assert_eq!(parse(&one), vec![activity("p1", 7)]);
        assert!(parse(b"{broken").is_empty());
    }
}
