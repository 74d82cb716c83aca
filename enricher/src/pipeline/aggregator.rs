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
use crate::window::{Activity, ActivitySource, Outcome, WindowRow, Windows};

/// Windows of one repartition partition, and the replays it has already counted.
#[derive(Debug)]
struct OwnedWindows {
    windows: Windows,
    /// Per (source topic, source partition): highest source offset counted. Activities arrive
    /// in source order per source partition, so anything at or below it is a replay.
    seen: HashMap<(String, i32), i64>,
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

    /// Counts one repartition record, and returns the rows to write: windows it closed, or a
    /// closed window's row re-emitted with a higher `lateDropped`.
    pub fn add(&mut self, message: &BorrowedMessage<'_>, metrics: &EnricherMetrics) -> Vec<WindowRow> {
        let Some(owned) = self.partitions.get_mut(&message.partition()) else { return Vec::new() };
        owned.next = message.offset() + 1;
        let Some(mut activity) = message.payload().and_then(|p| serde_json::from_slice::<Activity>(p).ok()) else {
            return Vec::new();
        };
        let source = match activity.source.take() {
            Some(ActivitySource { topic, partition, offset }) => Some(((topic, partition), offset)),
            // Written by a version that kept the source in headers.
            None => source_of(message),
        };
        if let Some((source_key, source_offset)) = source {
            let seen = owned.seen.entry(source_key).or_insert(-1);
            if source_offset <= *seen {
                EnricherMetrics::add(&metrics.activity_duplicates, 1);
                return Vec::new();
            }
            *seen = source_offset;
        }
        match owned.windows.add(&activity, message.offset()) {
            Outcome::Counted { closed } => {
                EnricherMetrics::add(&metrics.activities_aggregated, 1);
                closed
            }
            Outcome::Late { reemit } => {
                EnricherMetrics::add(&metrics.window_late_dropped, 1);
                reemit.into_iter().collect()
            }
        }
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

fn source_of(message: &BorrowedMessage<'_>) -> Option<((String, i32), i64)> {
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
    Some(((topic, partition), offset))
}
