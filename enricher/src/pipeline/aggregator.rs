//! The windows of each repartition partition a pipeline thread owns: counting each product
//! activity once, the rows of windows that close, and how much of the repartition topic is
//! safe to commit.

use std::collections::{BTreeMap, HashMap};

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::checkpoint::{
    WatermarkMark, WindowCommit, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use crate::config::WindowSettings;
use crate::metrics::EnricherMetrics;
use crate::window::{ActivitySource, Outcome, WindowRow, Windows};

/// Windows of one repartition partition, and the replays it has already counted.
#[derive(Debug)]
struct OwnedWindows {
    windows: Windows,
    /// Per source topic and partition: the highest (source offset, line item) counted.
    /// Activities arrive in source order per source partition, and one record's items in
    /// their order, so anything at or below it is a replay.
    seen: HashMap<String, HashMap<i32, SourcePosition>>,
    next: i64,
    /// The watermark last handed out to be written to the window watermark topic.
    published_ms: Option<i64>,
}

/// Every owned repartition partition's windows.
#[derive(Debug)]
pub struct Aggregator {
    size_ms: i64,
    grace_ms: i64,
    partitions: BTreeMap<i32, OwnedWindows>,
}

impl Aggregator {
    pub fn new(settings: &WindowSettings) -> Self {
        Self {
            size_ms: i64::try_from(settings.size_secs.saturating_mul(1000)).unwrap_or(60_000),
            grace_ms: i64::try_from(settings.grace_secs.saturating_mul(1000)).unwrap_or(0),
            partitions: BTreeMap::new(),
        }
    }

    /// Takes `partition` over from its committed offset (`None`: the start), with the
    /// watermark kept in the commit's metadata or, where the broker drops that metadata, the
    /// last one in the window watermark topic; returns where to read from.
    pub fn place(&mut self, partition: i32, committed: Option<i64>, metadata: &str, published: Option<i64>) -> i64 {
        let restored: WindowCommit = serde_json::from_str(metadata).unwrap_or_default();
        // Both were written no earlier than the commit this resumes from: the later is right.
        let watermark_ms = restored.watermark_ms.max(published);
        let windows = Windows::new(self.size_ms, self.grace_ms, watermark_ms);
        let start = committed.unwrap_or(0);
        let owned = OwnedWindows { windows, seen: HashMap::new(), next: start, published_ms: watermark_ms };
        self.partitions.insert(partition, owned);
        start
    }

    /// The watermarks that moved since they were last handed out, to be written to the window
    /// watermark topic once the rows of the windows they closed are delivered.
    pub fn moved_watermarks(&mut self) -> Vec<WatermarkMark> {
        let mut moved = Vec::new();
        for (partition, owned) in &mut self.partitions {
            let current = owned.windows.watermark_ms();
            if let Some(watermark_ms) = current.filter(|_| current > owned.published_ms) {
                moved.push(WatermarkMark { partition: *partition, watermark_ms });
                owned.published_ms = current;
            }
        }
        moved
    }

    /// Forgets every partition (they were revoked).
    pub fn clear(&mut self) {
        self.partitions.clear();
    }

    /// Counts one repartition record's activities, and returns the rows to write: windows
    /// they closed, or a closed window's row re-emitted with a higher `lateDropped`.
    pub fn add(&mut self, message: &BorrowedMessage<'_>, metrics: &EnricherMetrics) -> Vec<WindowRow> {
        let Some(owned) = self.partitions.get_mut(&message.partition()) else { return Vec::new() };
        owned.next = message.offset() + 1;
        let activities = message.payload().map(super::activities::parse).unwrap_or_default();
        let mut rows = Vec::new();
        for activity in activities {
            let source = match &activity.source {
                Some(ActivitySource { topic, partition, offset, item }) => {
                    Some((topic.clone(), *partition, (*offset, *item)))
                }
                // Written by a version that kept the source in headers.
                None => source_of(message).map(|(topic, partition, position)| (topic.into(), partition, position)),
            };
            if let Some((topic, partition, position)) = source {
                if !first_sighting(&mut owned.seen, &topic, partition, position) {
                    EnricherMetrics::add(&metrics.activity_duplicates, 1);
                    continue;
                }
            }
            match owned.windows.add(&activity, message.offset()) {
                Outcome::Counted { closed } => {
                    EnricherMetrics::add(&metrics.activities_aggregated, 1);
                    rows.extend(closed);
                }
                Outcome::Late { reemit } => {
                    EnricherMetrics::add(&metrics.window_late_dropped, 1);
                    rows.extend(reemit);
                }
            }
        }
        rows
    }

    /// Adds each partition's safe offset to `list`: up to the oldest record of a still-open
    /// window, with the watermark reached in the commit's metadata.
    pub fn add_progress(&self, list: &mut TopicPartitionList, topic: &str) -> Result<(), KafkaError> {
        for (partition, owned) in &self.partitions {
            let safe = owned.windows.low_water_offset().unwrap_or(owned.next).min(owned.next);
            list.add_partition_offset(topic, *partition, Offset::Offset(safe))?;
            let metadata =
                serde_json::to_string(&WindowCommit { watermark_ms: owned.windows.watermark_ms() }).unwrap_or_default();
            if let Some(mut element) = list.find_partition(topic, *partition) {
                element.set_metadata(metadata);
            }
        }
        Ok(())
    }
}

/// An activity's place in its source partition: the input record's offset, then the line
/// item's index within that record.
type SourcePosition = (i64, u32);

/// Whether the activity at `position` of `source` is counted for the first time, noting it if
/// so; a replay repeats a position at or below the highest seen.
fn first_sighting(
    seen: &mut HashMap<String, HashMap<i32, SourcePosition>>,
    topic: &str,
    partition: i32,
    position: SourcePosition,
) -> bool {
    // The topic is looked up borrowed: it is allocated once per source topic, not per line.
    let partitions = match seen.get_mut(topic) {
        Some(partitions) => partitions,
        None => seen.entry(topic.to_owned()).or_default(),
    };
    let highest = partitions.entry(partition).or_insert((-1, 0));
    if position <= *highest {
        return false;
    }
    *highest = position;
    true
}

/// The source of an activity written by a version that kept it in headers (one line item per
/// record there, so its index is 0).
fn source_of(message: &BorrowedMessage<'_>) -> Option<(String, i32, SourcePosition)> {
    let headers = message.headers()?;
    let text = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    };
    let topic = text(HEADER_SOURCE_TOPIC)?;
    let partition = text(HEADER_SOURCE_PARTITION)?.parse().ok()?;
    let offset = text(HEADER_SOURCE_OFFSET)?.parse().ok()?;
    Some((topic, partition, (offset, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An order of three line items yields three activities at one offset: all are counted,
    /// and a replay of any of them is not.
    #[test]
    fn each_line_item_of_a_record_counts_once() {
        let mut seen = HashMap::new();
        let first: Vec<bool> =
            [(5, 0), (5, 1), (5, 2), (6, 0)].map(|at| first_sighting(&mut seen, "events.raw", 0, at)).into();
        assert_eq!(first, vec![true; 4]);
        let replayed: Vec<bool> =
            [(5, 1), (5, 2), (6, 0)].map(|at| first_sighting(&mut seen, "events.raw", 0, at)).into();
        assert_eq!(replayed, vec![false; 3]);
        assert!(first_sighting(&mut seen, "events.raw", 1, (5, 0)), "another source partition");
        assert!(first_sighting(&mut seen, "events.other", 0, (5, 0)), "another source topic");
        assert!(first_sighting(&mut seen, "events.raw", 0, (6, 1)));
    }
}
