//! Product activities on their way to the repartition topic, gathered per target partition
//! into one record while they fall in one window, so the second Kafka round trip costs a
//! record per batch rather than per line item; and the record's binary layout.

use std::collections::BTreeMap;

use crate::window::{Activity, ActivitySource};

/// Most activities in one repartition record: about 100 bytes each with short ids.
pub const BATCH_MAX: usize = 500;

/// A batch closes once it holds this many bytes. Product ids come from clients, up to an
/// event's size (32 KiB), and 500 of them would make a record over `message.max.bytes`,
/// which would stop the pipeline; one more activity past this stays far under 1 MB.
pub const BATCH_MAX_BYTES: usize = 256 * 1024;

/// Activities gathered for one repartition partition.
#[derive(Debug)]
struct Batch {
    /// The window every activity of the batch falls in (its start over the window length).
    window: i64,
    count: usize,
    /// The record so far: [`BATCH_V1`], then each activity (see [`write`]).
    bytes: Vec<u8>,
}

/// A batch ready to send.
#[derive(Debug)]
pub struct Closed {
    pub partition: i32,
    pub count: usize,
    /// The record's value.
    pub bytes: Vec<u8>,
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
    /// `activity` falls in another window or the batch is full (in count or in bytes).
    pub fn push(&mut self, partition: i32, activity: &Activity<'_>) -> Option<Closed> {
        let window = activity.event_ms.div_euclid(self.window_ms);
        let closed = match self.open.get(&partition) {
            Some(batch)
                if batch.window != window || batch.count >= BATCH_MAX || batch.bytes.len() >= BATCH_MAX_BYTES =>
            {
                self.close(partition)
            }
            _ => None,
        };
        let batch = self.open.entry(partition).or_insert_with(|| Batch { window, count: 0, bytes: vec![BATCH_V1] });
        write(&mut batch.bytes, activity);
        batch.count += 1;
        closed
    }

    /// Every open batch, to be sent before a commit records the input they came from.
    pub fn drain(&mut self) -> Vec<Closed> {
        std::mem::take(&mut self.open).into_iter().map(|(partition, batch)| batch.closed(partition)).collect()
    }

    /// Drops every open batch: the pipeline failed, and its input will be read again.
    pub fn clear(&mut self) {
        self.open.clear();
    }

    fn close(&mut self, partition: i32) -> Option<Closed> {
        Some(self.open.remove(&partition)?.closed(partition))
    }
}

impl Batch {
    fn closed(self, partition: i32) -> Closed {
        Closed { partition, count: self.count, bytes: self.bytes }
    }
}

/// The first byte of a batch record. JSON, which records of older versions hold (one object
/// each), starts with `{`. Read back as JSON, activities cost about 5.8k instructions each
/// (callgrind): three allocated strings and two floats to parse.
const BATCH_V1: u8 = 0xB1;

/// Appends `activity`: its product id and event name (each a u32 length, little-endian, and
/// UTF-8), event time (i64), quantity and revenue (f64 bits), then 0, or 1 and its source
/// (topic as a string, partition i32, offset i64, line u32).
fn write(out: &mut Vec<u8>, activity: &Activity<'_>) {
    put_str(out, &activity.product_id);
    put_str(out, &activity.event);
    out.extend_from_slice(&activity.event_ms.to_le_bytes());
    out.extend_from_slice(&activity.quantity.to_bits().to_le_bytes());
    out.extend_from_slice(&activity.revenue.to_bits().to_le_bytes());
    match &activity.source {
        None => out.push(0),
        Some(source) => {
            out.push(1);
            put_str(out, &source.topic);
            out.extend_from_slice(&source.partition.to_le_bytes());
            out.extend_from_slice(&source.offset.to_le_bytes());
            out.extend_from_slice(&source.item.to_le_bytes());
        }
    }
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // An event is at most `limits.max_event_bytes`, far below 4 GiB.
    out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The activities of a repartition record, their text borrowed from it: a batch, or the JSON
/// object an older version wrote per record. Nothing for a record that is neither.
pub fn parse(payload: &[u8]) -> Vec<Activity<'_>> {
    match payload.split_first() {
        Some((&BATCH_V1, mut rest)) => {
            let mut activities = Vec::new();
            while !rest.is_empty() {
                match read(&mut rest) {
                    Some(activity) => activities.push(activity),
                    None => return Vec::new(),
                }
            }
            activities
        }
        _ => serde_json::from_slice(payload).map(|one| vec![one]).unwrap_or_default(),
    }
}

/// The activity at the start of `rest`, which moves past it.
fn read<'a>(rest: &mut &'a [u8]) -> Option<Activity<'a>> {
    let product_id = take_str(rest)?.into();
    let event = take_str(rest)?.into();
    let event_ms = i64::from_le_bytes(take(rest)?);
    let quantity = f64::from_bits(u64::from_le_bytes(take(rest)?));
    let revenue = f64::from_bits(u64::from_le_bytes(take(rest)?));
    let source = match take::<1>(rest)? {
        [0] => None,
        [1] => Some(ActivitySource {
            topic: take_str(rest)?.into(),
            partition: i32::from_le_bytes(take(rest)?),
            offset: i64::from_le_bytes(take(rest)?),
            item: u32::from_le_bytes(take(rest)?),
        }),
        _ => return None,
    };
    Some(Activity { product_id, event, event_ms, quantity, revenue, source })
}

fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

fn take_str<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let len = usize::try_from(u32::from_le_bytes(take(rest)?)).ok()?;
    let (text, tail) = rest.split_at_checked(len)?;
    *rest = tail;
    std::str::from_utf8(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(product: &str, event_ms: i64) -> Activity<'static> {
        Activity {
            product_id: product.to_owned().into(),
            event: "Product Viewed".to_owned().into(),
            event_ms,
            quantity: 1.0,
            revenue: 0.0,
            source: None,
        }
    }

    fn ids(closed: &Closed) -> Vec<String> {
        parse(&closed.bytes).into_iter().map(|a| a.product_id.into_owned()).collect()
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
        assert_eq!(parse(&full.bytes).len(), BATCH_MAX);

        // Long product ids close a batch by its size.
        let long = "p".repeat(30_000);
        let per_batch = BATCH_MAX_BYTES.div_ceil(30_000 + 50);
        let closed: Vec<Closed> = (0..3 * per_batch).filter_map(|_| batches.push(3, &activity(&long, 5))).collect();
        assert!(closed.len() >= 2, "{} batches closed", closed.len());
        for batch in &closed {
            assert!(batch.bytes.len() < BATCH_MAX_BYTES + 31_000, "{} bytes", batch.bytes.len());
            assert_eq!(parse(&batch.bytes).len(), batch.count);
        }
        batches.clear();
        assert!(batches.drain().is_empty());
    }

    #[test]
    fn activities_read_back_as_written() {
        let sourced = Activity {
            product_id: "pé-\"1\"".into(),
            event: "Order Completed".into(),
            event_ms: -5,
            quantity: 2.5,
            revenue: -0.1,
            source: Some(ActivitySource { topic: "events.raw".into(), partition: 7, offset: i64::MAX, item: 3 }),
        };
        // All in the window [-10, 0).
        let written = [sourced, activity("", -10), activity("p2", -1)];
        let mut batches = ActivityBatches::new(10);
        for one in &written {
            assert!(batches.push(0, one).is_none());
        }
        let record = batches.drain().remove(0).bytes;
        assert_eq!(parse(&record), written);
        // A cut or corrupted record yields nothing rather than a wrong activity.
        assert!(parse(&record[..record.len() - 1]).is_empty());
        let mut bad_flag = record.clone();
        let flag_at = 1 + 4 + "pé-\"1\"".len() + 4 + "Order Completed".len() + 24;
        bad_flag[flag_at] = 9;
        assert!(parse(&bad_flag).is_empty());
        assert!(parse(&[BATCH_V1]).is_empty());
    }

    #[test]
    fn a_record_of_an_older_version_holds_one_activity() {
        let one = serde_json::to_vec(&activity("p1", 7)).expect("json");
        assert_eq!(parse(&one), vec![activity("p1", 7)]);
        assert!(parse(b"{broken").is_empty());
        assert!(parse(b"").is_empty());
    }
}
