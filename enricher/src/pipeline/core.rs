//! The pipeline's state and per-record work: which partitions this instance owns, what each
//! has emitted, the windows of each repartition partition, and producing the outputs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use clickstream_platform::kafka::send_waiting;

use super::checkpoint::{
    Checkpoint, HEADER_CHECKPOINT, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use super::lock;
use crate::config::{EnricherConfig, Guarantee};
use crate::enrich::Enrichers;
use crate::metrics::EnricherMetrics;
use crate::process::{process, Input, PartitionState, Processed};
use crate::session::stable_hash;
use crate::window::{Activity, ActivitySource, Outcome, WindowRow, Windows};

/// Counts failed deliveries (any failure makes the pipeline restart from its checkpoints) and
/// the outputs still in flight per commit epoch, so a periodic commit can wait for exactly
/// the outputs sent before it without stopping the pipeline.
#[derive(Debug, Default)]
pub struct OutputContext {
    pub failures: AtomicU64,
    pub metrics: Arc<EnricherMetrics>,
    /// The pipeline thread's slot in the shared statistics.
    stats_slot: usize,
    /// Epoch → outputs sent in it and not yet answered by Kafka.
    in_flight: Mutex<BTreeMap<usize, u64>>,
}

impl OutputContext {
    pub fn new(metrics: Arc<EnricherMetrics>, stats_slot: usize) -> Self {
        Self { metrics, stats_slot, ..Self::default() }
    }

    /// True when every output sent in `epoch` or earlier has been answered.
    pub fn settled_through(&self, epoch: usize) -> bool {
        lock(&self.in_flight).first_key_value().is_none_or(|(oldest, _)| *oldest > epoch)
    }

    fn sent(&self, epoch: usize) {
        *lock(&self.in_flight).entry(epoch).or_default() += 1;
    }

    fn answered(&self, epoch: usize) {
        let mut in_flight = lock(&self.in_flight);
        if let Some(count) = in_flight.get_mut(&epoch) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&epoch);
            }
        }
    }
}

impl ClientContext for OutputContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics.producer_stats.record_slot(self.stats_slot, &statistics);
    }
}

impl ProducerContext for OutputContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, epoch: usize) {
        self.answered(epoch);
        if let Err((error, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            EnricherMetrics::add(&self.metrics.delivery_errors, 1);
            tracing::warn!(%error, "output record not delivered");
        } else {
            EnricherMetrics::add(&self.metrics.outputs_delivered, 1);
        }
    }
}

pub type OutputProducer = BaseProducer<OutputContext>;
type OutputRecord<'a> = BaseRecord<'a, [u8], [u8], usize>;

/// One input partition number, owned across every input topic (they are co-partitioned).
#[derive(Debug)]
pub struct OwnedPartition {
    pub state: PartitionState,
    /// Per topic index: next offset to process.
    pub next: HashMap<usize, i64>,
    /// Per topic index: offsets below these already have their enriched output.
    pub enriched_from: HashMap<usize, i64>,
    /// Per topic index: offsets below these already have their repartition output.
    pub activity_from: HashMap<usize, i64>,
    replay: HashMap<usize, i64>,
    replay_computed: Option<Instant>,
}

impl OwnedPartition {
    pub fn new(state: PartitionState) -> Self {
        Self {
            state,
            next: HashMap::new(),
            enriched_from: HashMap::new(),
            activity_from: HashMap::new(),
            replay: HashMap::new(),
            replay_computed: None,
        }
    }
}

/// Windows of one repartition partition, and the replays it has already counted.
#[derive(Debug)]
pub struct OwnedWindows {
    pub windows: Windows,
    /// Per (source topic, source partition): highest source offset counted. Activities arrive
    /// in source order per source partition, so anything at or below it is a replay.
    seen: HashMap<(String, i32), i64>,
    pub next: i64,
}

impl OwnedWindows {
    pub fn new(windows: Windows, next: i64) -> Self {
        Self { windows, seen: HashMap::new(), next }
    }
}

/// Everything the pipeline owns; the consumer's rebalance callback and the poll loop share it.
pub struct Core {
    pub config: EnricherConfig,
    pub inputs: Vec<String>,
    pub enrichers: Arc<Enrichers>,
    pub producer: Arc<OutputProducer>,
    pub metrics: Arc<EnricherMetrics>,
    pub partitions: BTreeMap<i32, OwnedPartition>,
    pub windows: BTreeMap<i32, OwnedWindows>,
    pub repartition_partitions: i32,
    /// True while a Kafka transaction is open (transactional mode).
    pub in_transaction: bool,
    /// Commit epoch of the outputs being sent: each periodic commit closes one.
    pub epoch: usize,
    /// Periodic commits waiting for their epoch's outputs, oldest first.
    pub pending_commits: std::collections::VecDeque<(usize, rdkafka::TopicPartitionList)>,
    /// Bytes of the output being built (a checkpoint header or an activity), reused from
    /// record to record.
    pub scratch: Vec<u8>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("partitions", &self.partitions.keys())
            .field("windows", &self.windows.keys())
            .finish()
    }
}

const REPLAY_REFRESH: Duration = Duration::from_secs(1);

impl Core {
    pub fn guarantee(&self) -> Guarantee {
        self.config.enricher.guarantee
    }

    /// Handles one consumed record.
    pub fn handle(&mut self, message: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
        EnricherMetrics::add(&self.metrics.records_consumed, 1);
        if message.topic() == self.config.enricher.topics.repartition {
            return self.aggregate(message);
        }
        let Some(topic_index) = self.inputs.iter().position(|t| t == message.topic()) else { return Ok(()) };
        let partition = message.partition();
        let offset = message.offset();
        let Some(owned) = self.partitions.get_mut(&partition) else { return Ok(()) };
        let input = Input {
            topic: message.topic(),
            topic_index,
            partition,
            offset,
            payload: message.payload(),
            timestamp_ms: message.timestamp().to_millis(),
        };
        let processed = process(&self.enrichers, &mut owned.state, input);
        owned.next.insert(topic_index, offset + 1);
        let emit_enriched = offset >= owned.enriched_from.get(&topic_index).copied().unwrap_or(0);
        let emit_activity = offset >= owned.activity_from.get(&topic_index).copied().unwrap_or(0);
        if !emit_enriched && !emit_activity {
            EnricherMetrics::add(&self.metrics.records_replayed, 1);
        }
        let metrics = &self.metrics;
        match processed {
            Processed::Duplicate => EnricherMetrics::add(&metrics.duplicates_dropped, 1),
            Processed::Dead(letter) => {
                if emit_enriched {
                    EnricherMetrics::add(&metrics.dead_letters, 1);
                    let topic = self.config.enricher.topics.dlq.clone();
                    let headers = source_headers(message.topic(), partition, offset);
                    let payload = letter.to_json();
                    self.send(
                        BaseRecord::with_opaque_to(&topic, self.epoch).payload(payload.as_slice()).headers(headers),
                    )?;
                }
            }
            Processed::Enriched { payload, activities, join_misses } => {
                if emit_activity {
                    for activity in &activities {
                        self.send_activity(activity)?;
                    }
                }
                if emit_enriched {
                    EnricherMetrics::add(&self.metrics.join_misses, join_misses as u64);
                    EnricherMetrics::add(&self.metrics.events_enriched, 1);
                    self.send_enriched(message, &payload)?;
                }
            }
        }
        Ok(())
    }

    fn send_enriched(&mut self, message: &BorrowedMessage<'_>, payload: &[u8]) -> Result<(), KafkaError> {
        let partition = message.partition();
        let input_headers = message.headers();
        let copied = input_headers.as_ref().map_or(0, |h| h.count());
        let mut headers = OwnedHeaders::new_with_capacity(copied + SOURCE_HEADERS + 1);
        if let Some(input_headers) = input_headers {
            for header in input_headers.iter() {
                headers = headers.insert(Header { key: header.key, value: header.value });
            }
        }
        headers = append_source(headers, message.topic(), partition, message.offset());
        let exactly_once = self.guarantee() != Guarantee::AtLeastOnce;
        if exactly_once {
            self.write_checkpoint(partition);
            headers = headers.insert(Header { key: HEADER_CHECKPOINT, value: Some(self.scratch.as_slice()) });
        }
        let topic = &self.config.enricher.topics.enriched;
        let mut record = BaseRecord::with_opaque_to(topic, self.epoch).payload(payload).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if exactly_once {
            // Output partition p holds input partition p, whatever the key: resuming reads
            // exactly one partition's tail.
            record = record.partition(partition);
        }
        self.send(record)
    }

    /// Writes the checkpoint header of `partition`'s next output into `scratch`.
    fn write_checkpoint(&mut self, partition: i32) {
        let inputs = &self.inputs;
        let name = |i: &usize| inputs.get(*i).map_or("", String::as_str);
        let Some(owned) = self.partitions.get_mut(&partition) else {
            Checkpoint::write_header(&mut self.scratch, std::iter::empty(), std::iter::empty());
            return;
        };
        if owned.replay_computed.is_none_or(|at| at.elapsed() > REPLAY_REFRESH) {
            owned.replay = owned.state.sessions.replay_from();
            owned.replay_computed = Some(Instant::now());
        }
        Checkpoint::write_header(
            &mut self.scratch,
            owned.next.iter().map(|(i, o)| (name(i), *o)),
            owned.replay.iter().map(|(i, o)| (name(i), *o)),
        );
    }

    fn send_activity(&mut self, activity: &Activity) -> Result<(), KafkaError> {
        self.scratch.clear();
        // Serializing plain fields into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.scratch, activity);
        // Our own stable hash, not the client's partitioner, so every instance and restart
        // sends a product to the same partition.
        let target =
            i32::try_from(stable_hash(&[activity.product_id.as_bytes()]) % self.repartition_partitions.max(1) as u64)
                .unwrap_or(0);
        let record = BaseRecord::with_opaque_to(&self.config.enricher.topics.repartition, self.epoch)
            .key(activity.product_id.as_bytes())
            .payload(self.scratch.as_slice())
            .partition(target);
        self.send(record)?;
        EnricherMetrics::add(&self.metrics.activities_repartitioned, 1);
        Ok(())
    }

    fn aggregate(&mut self, message: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
        let Some(owned) = self.windows.get_mut(&message.partition()) else { return Ok(()) };
        owned.next = message.offset() + 1;
        let Some(mut activity) = message.payload().and_then(|p| serde_json::from_slice::<Activity>(p).ok()) else {
            return Ok(());
        };
        let source = match activity.source.take() {
            Some(ActivitySource { topic, partition, offset }) => Some(((topic, partition), offset)),
            // Written by a version that kept the source in headers.
            None => source_of(message),
        };
        if let Some((source_key, source_offset)) = source {
            let seen = owned.seen.entry(source_key).or_insert(-1);
            if source_offset <= *seen {
                EnricherMetrics::add(&self.metrics.activity_duplicates, 1);
                return Ok(());
            }
            *seen = source_offset;
        }
        let rows = match owned.windows.add(&activity, message.offset()) {
            Outcome::Counted { closed } => {
                EnricherMetrics::add(&self.metrics.activities_aggregated, 1);
                closed
            }
            Outcome::Late { reemit } => {
                EnricherMetrics::add(&self.metrics.window_late_dropped, 1);
                reemit.into_iter().collect()
            }
        };
        for row in rows {
            self.send_window(&row)?;
        }
        Ok(())
    }

    /// Enqueues a record in the current epoch, waiting while the local queue is full.
    fn send(&self, record: OutputRecord<'_>) -> Result<(), KafkaError> {
        send_waiting(&self.producer, record)?;
        let context = self.producer.context();
        context.sent(self.epoch);
        EnricherMetrics::add(&context.metrics.outputs_sent, 1);
        Ok(())
    }

    fn send_window(&self, row: &WindowRow) -> Result<(), KafkaError> {
        EnricherMetrics::add(&self.metrics.windows_emitted, 1);
        let payload = serde_json::to_vec(row).unwrap_or_default();
        let key = row.key();
        self.send(
            BaseRecord::with_opaque_to(&self.config.enricher.topics.aggregates, self.epoch)
                .key(key.as_bytes())
                .payload(payload.as_slice()),
        )
    }
}

fn source_headers(topic: &str, partition: i32, offset: i64) -> OwnedHeaders {
    append_source(OwnedHeaders::new(), topic, partition, offset)
}

/// How many headers `append_source` adds.
const SOURCE_HEADERS: usize = 3;

fn append_source(headers: OwnedHeaders, topic: &str, partition: i32, offset: i64) -> OwnedHeaders {
    headers
        .insert(Header { key: HEADER_SOURCE_TOPIC, value: Some(topic) })
        .insert(Header { key: HEADER_SOURCE_PARTITION, value: Some(itoa::Buffer::new().format(partition)) })
        .insert(Header { key: HEADER_SOURCE_OFFSET, value: Some(itoa::Buffer::new().format(offset)) })
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
