//! Where a restarted enricher resumes: the checkpoint each enriched record carries in its
//! headers, the window watermarks it keeps in commit metadata and in a topic of its own, and
//! reading either back from the tail of a partition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clickstream_platform::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// Header with the checkpoint, on every enriched record written in an exactly-once mode.
pub const HEADER_CHECKPOINT: &str = "clickstream-checkpoint";
/// Headers naming the input record an output came from.
pub const HEADER_SOURCE_TOPIC: &str = "source-topic";
pub const HEADER_SOURCE_PARTITION: &str = "source-partition";
pub const HEADER_SOURCE_OFFSET: &str = "source-offset";

/// Progress of one input partition number across the input topics, as of one output record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Per input topic, the next offset to process: everything below has its output.
    pub next: BTreeMap<String, i64>,
    /// Per input topic, where to start re-reading to rebuild open sessions.
    pub replay: BTreeMap<String, i64>,
}

impl Checkpoint {
    pub fn to_header(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_header(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// Writes the header of the checkpoint these positions make into `out`, as `to_header`
    /// would, without building the maps: it is written for every enriched record.
    pub fn write_header<'a>(
        out: &mut Vec<u8>,
        next: impl Iterator<Item = (&'a str, i64)>,
        replay: impl Iterator<Item = (&'a str, i64)>,
    ) {
        out.clear();
        out.extend_from_slice(b"{\"next\":");
        write_positions(out, next);
        out.extend_from_slice(b",\"replay\":");
        write_positions(out, replay);
        out.push(b'}');
    }
}

fn write_positions<'a>(out: &mut Vec<u8>, positions: impl Iterator<Item = (&'a str, i64)>) {
    out.push(b'{');
    for (index, (topic, offset)) in positions.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        // Writing to a Vec cannot fail; the escaping is what is wanted from serde_json.
        let _ = serde_json::to_writer(&mut *out, topic);
        out.push(b':');
        out.extend_from_slice(itoa::Buffer::new().format(offset).as_bytes());
    }
    out.push(b'}');
}

/// The window watermark of a repartition partition: in the metadata of its committed offset,
/// and as the payload of its records in the window watermark topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCommit {
    /// The event-time watermark the partition had reached.
    pub watermark_ms: Option<i64>,
}

/// A repartition partition's watermark, to be written to the window watermark topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkMark {
    pub partition: i32,
    pub watermark_ms: i64,
}

/// Reads the checkpoint of the last record in `topic`/`partition`, or `None` when the
/// partition holds no record written with one.
///
/// The high watermark a broker reports is only where reading starts: reading then continues
/// until the partition stays quiet, because a broker can report a stale high watermark (Tansu's
/// memory storage does) and a checkpoint short of the tail would repeat output.
pub fn read_tail_checkpoint(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    isolation: &str,
    timeout: Duration,
) -> Result<Option<Checkpoint>, KafkaError> {
    read_tail(kafka, topic, partition, isolation, timeout, checkpoint_of)
}

/// Reads the watermark of the last record in `topic`/`partition` of the window watermark
/// topic, or `None` when no watermark was written there.
pub fn read_tail_watermark(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    isolation: &str,
    timeout: Duration,
) -> Result<Option<i64>, KafkaError> {
    let watermark_of = |message: &BorrowedMessage<'_>| {
        message.payload().and_then(|p| serde_json::from_slice::<WindowCommit>(p).ok()).and_then(|c| c.watermark_ms)
    };
    read_tail(kafka, topic, partition, isolation, timeout, watermark_of)
}

fn checkpoint_of(message: &BorrowedMessage<'_>) -> Option<Checkpoint> {
    let headers = message.headers()?;
    headers
        .iter()
        .filter(|header| header.key == HEADER_CHECKPOINT)
        .filter_map(|header| header.value.and_then(Checkpoint::from_header))
        .last()
}

/// The last value `extract` finds in `topic`/`partition`, read from its tail.
fn read_tail<T>(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    isolation: &str,
    timeout: Duration,
    extract: impl Fn(&BorrowedMessage<'_>) -> Option<T>,
) -> Result<Option<T>, KafkaError> {
    let consumer: BaseConsumer<TailContext> = kafka
        .client_config(&[
            ("group.id", "clickstream-enricher-tail".to_owned()),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.partition.eof", "true".to_owned()),
            // Under transactions the tail may be an aborted batch or a commit marker.
            ("isolation.level", isolation.to_owned()),
            ("fetch.wait.max.ms", "50".to_owned()),
        ])
        .create_with_context(TailContext)?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
    // Without transactions no control record sits at the end, so the last record read must be
    // the one before the end offset the broker reports once the partition is quiet.
    let tail = Tail { topic, partition, confirm_end: isolation == "read_uncommitted" };
    // Widen the window until a record with a value turns up: control records and records
    // without one can sit at the very end.
    let mut span = 16_i64;
    loop {
        let start = (high - span).max(low);
        if let Some(found) = last_value_from(&consumer, &tail, start, timeout, &extract)? {
            return Ok(Some(found));
        }
        if start == low {
            return Ok(None);
        }
        span = span.saturating_mul(16);
    }
}

/// How long the partition must stay quiet, at its end, before the last record is the tail.
const QUIET: Duration = Duration::from_millis(500);

/// The tail reader's client context: reaching the end of a partition is what it waits for, so
/// librdkafka's end-of-partition events stay out of the error log.
struct TailContext;

impl ClientContext for TailContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!(%error, reason, "librdkafka error while reading an output tail");
        }
    }
}

impl ConsumerContext for TailContext {}

/// The partition a tail read reads.
struct Tail<'a> {
    topic: &'a str,
    partition: i32,
    /// Whether a quiet end is checked against the end offset the broker reports: a fetch
    /// slower than `QUIET` (a loaded broker) must not pass for the end.
    confirm_end: bool,
}

fn last_value_from<T>(
    consumer: &BaseConsumer<TailContext>,
    tail: &Tail<'_>,
    start: i64,
    timeout: Duration,
    extract: impl Fn(&BorrowedMessage<'_>) -> Option<T>,
) -> Result<Option<T>, KafkaError> {
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(tail.topic, tail.partition, Offset::Offset(start))?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut found = None;
    let mut at_end_since: Option<Instant> = None;
    let mut next_offset = start;
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(KafkaError::Global(RDKafkaErrorCode::OperationTimedOut));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Err(KafkaError::PartitionEOF(_))) => {
                at_end_since.get_or_insert_with(Instant::now);
            }
            Some(Err(error)) => return Err(error),
            Some(Ok(message)) => {
                at_end_since = None;
                next_offset = message.offset() + 1;
                if let Some(value) = extract(&message) {
                    found = Some(value);
                }
            }
            None => {}
        }
        if at_end_since.is_some_and(|since| since.elapsed() >= QUIET) {
            if tail.confirm_end {
                let (_, end) = consumer.fetch_watermarks(tail.topic, tail.partition, deadline - now)?;
                if end > next_offset {
                    at_end_since = None;
                    continue;
                }
            }
            return Ok(found);
        }
    }
}

/// Per (topic, partition): the committed offset, if any, and its metadata.
pub type Committed = BTreeMap<(String, i32), (Option<i64>, String)>;

/// Committed offsets (with their metadata) of the given partitions of the group.
pub fn committed<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> Result<Committed, KafkaError> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(list, timeout)?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| {
            ((e.topic().to_owned(), e.partition()), (e.offset().to_raw().filter(|o| *o >= 0), e.metadata().to_owned()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_through_its_header() {
        let checkpoint = Checkpoint {
            next: BTreeMap::from([("events.raw".to_owned(), 124), ("events.payments".to_owned(), 7)]),
            replay: BTreeMap::from([("events.raw".to_owned(), 100)]),
        };
        assert_eq!(Checkpoint::from_header(checkpoint.to_header().as_bytes()), Some(checkpoint));
        assert_eq!(Checkpoint::from_header(b"garbage"), None);
    }

    #[test]
    fn written_header_reads_back_as_the_same_checkpoint() {
        let next = [("events.raw", 124), ("events.\"odd\"", -1)];
        let replay = [("events.raw", 100)];
        let mut header = Vec::new();
        Checkpoint::write_header(&mut header, next.into_iter(), replay.into_iter());
        let expected = Checkpoint {
            next: next.iter().map(|(t, o)| ((*t).to_owned(), *o)).collect(),
            replay: replay.iter().map(|(t, o)| ((*t).to_owned(), *o)).collect(),
        };
        assert_eq!(Checkpoint::from_header(&header), Some(expected));
        Checkpoint::write_header(&mut header, std::iter::empty(), std::iter::empty());
        assert_eq!(Checkpoint::from_header(&header), Some(Checkpoint::default()));
    }
}
