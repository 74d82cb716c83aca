//! A pipeline thread's state and per-record work: which input partitions it owns, what each
//! has emitted and where each resumes, and building the outputs of every record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_schema::ConsumerDeadLetter;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::{Offset, TopicPartitionList};

use super::activities::{ActivityBatches, Closed};
use super::aggregator::Aggregator;
use super::checkpoint::{
    committed, Checkpoint, HEADER_CHECKPOINT, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use super::committer::{Committer, OutputProducer};
use super::group::{GroupConsumer, Settle};
use super::tails::read_tails;
use super::PipelineError;
use crate::config::{EnricherConfig, Guarantee};
use crate::enrich::Enrichers;
use crate::metrics::EnricherMetrics;
use crate::process::{process, too_large_letter, Input, PartitionState, Processed};
use crate::session::stable_hash;
use crate::window::{Activity, WindowRow};

/// Longest wait for reading an output tail or the committed offsets.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One input partition number, owned across every input topic (they are co-partitioned).
#[derive(Debug)]
struct OwnedPartition {
    state: PartitionState,
    /// Per topic index: next offset to process.
    next: HashMap<usize, i64>,
    /// Per topic index: offsets below these already have their enriched output.
    enriched_from: HashMap<usize, i64>,
    /// Per topic index: offsets below these already have their repartition output.
    activity_from: HashMap<usize, i64>,
    replay: HashMap<usize, i64>,
    replay_computed: Option<Instant>,
}

impl OwnedPartition {
    fn new(state: PartitionState) -> Self {
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

/// Everything a pipeline thread owns; the consumer's rebalance callback and the poll loop
/// share it.
pub struct Core {
    config: EnricherConfig,
    inputs: Vec<String>,
    enrichers: Arc<Enrichers>,
    metrics: Arc<EnricherMetrics>,
    partitions: BTreeMap<i32, OwnedPartition>,
    aggregator: Aggregator,
    /// Activities not yet sent to the repartition topic; sent before every commit.
    activities: ActivityBatches,
    committer: Committer,
    repartition_partitions: i32,
    /// The checkpoint header being built, reused from record to record.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("partitions", &self.partitions.keys())
            .field("aggregator", &self.aggregator)
            .finish()
    }
}

const REPLAY_REFRESH: Duration = Duration::from_secs(1);

impl Core {
    pub fn new(
        config: EnricherConfig,
        enrichers: Arc<Enrichers>,
        producer: Arc<OutputProducer>,
        metrics: Arc<EnricherMetrics>,
        repartition_partitions: i32,
    ) -> Self {
        Self {
            inputs: config.input_topics(),
            aggregator: Aggregator::new(&config.enricher.windows),
            activities: ActivityBatches::new(
                i64::try_from(config.enricher.windows.size_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            ),
            committer: Committer::new(
                producer,
                config.enricher.guarantee,
                metrics.clone(),
                config.enricher.topics.window_watermarks.clone(),
            ),
            config,
            enrichers,
            metrics,
            partitions: BTreeMap::new(),
            repartition_partitions,
            scratch: Vec::new(),
        }
    }

    pub fn guarantee(&self) -> Guarantee {
        self.config.enricher.guarantee
    }

    pub fn committer(&mut self) -> &mut Committer {
        &mut self.committer
    }

    /// Handles one consumed record.
    pub fn handle(&mut self, message: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
        EnricherMetrics::add(&self.metrics.records_consumed, 1);
        if message.topic() == self.config.enricher.topics.repartition {
            for row in self.aggregator.add(message, &self.metrics) {
                self.send_window(&row)?;
            }
            return Ok(());
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
                    self.send_dead_letter(&letter)?;
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
                    match self.send_enriched(message, &payload) {
                        Ok(()) => EnricherMetrics::add(&self.metrics.events_enriched, 1),
                        // Refused before it was queued, so nothing of it is in flight.
                        Err(error) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
                            let stored = message.payload().unwrap_or_default();
                            let letter = too_large_letter(message.topic(), partition, offset, stored, payload.len());
                            self.send_dead_letter(&letter)?;
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        Ok(())
    }

    fn send_dead_letter(&self, letter: &ConsumerDeadLetter) -> Result<(), KafkaError> {
        EnricherMetrics::add(&self.metrics.dead_letters, 1);
        let headers = source_headers(&letter.topic, letter.partition, letter.offset);
        let payload = letter.to_json();
        let record = self.committer.record(&self.config.enricher.topics.dlq);
        self.committer.send(record.payload(payload.as_slice()).headers(headers))
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
        let mut record = self.committer.record(topic).payload(payload).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if exactly_once {
            // Output partition p holds input partition p, whatever the key: resuming reads
            // exactly one partition's tail.
            record = record.partition(partition);
        }
        self.committer.send(record)
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

    fn send_activity(&mut self, activity: &Activity<'_>) -> Result<(), KafkaError> {
        // Our own stable hash, not the client's partitioner, so every instance and restart
        // sends a product to the same partition.
        let target =
            i32::try_from(stable_hash(&[activity.product_id.as_bytes()]) % self.repartition_partitions.max(1) as u64)
                .unwrap_or(0);
        match self.activities.push(target, activity) {
            Some(closed) => self.send_batch(&closed),
            None => Ok(()),
        }
    }

    fn send_batch(&self, batch: &Closed) -> Result<(), KafkaError> {
        let record = self
            .committer
            .record(&self.config.enricher.topics.repartition)
            .payload(batch.bytes.as_slice())
            .partition(batch.partition);
        self.committer.send(record)?;
        EnricherMetrics::add(&self.metrics.activities_repartitioned, batch.count as u64);
        EnricherMetrics::add(&self.metrics.repartition_records, 1);
        Ok(())
    }

    /// Sets the start offset of every newly assigned partition and prepares its state.
    pub fn place(&mut self, consumer: &GroupConsumer, tpl: &mut TopicPartitionList) -> Result<(), PipelineError> {
        // Our own records still in flight would land after the tail is read, and be repeated.
        self.committer.flush()?;
        let assigned: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        let committed = committed(consumer, &assigned, CALL_TIMEOUT)?;
        let settings = self.config.enricher.clone();
        let mut input_partitions: Vec<i32> = Vec::new();
        let mut repartition_partitions: Vec<i32> = Vec::new();
        for (topic, partition) in &assigned {
            if *topic == settings.topics.repartition {
                repartition_partitions.push(*partition);
            } else if !input_partitions.contains(partition) {
                input_partitions.push(*partition);
            }
        }
        let started = Instant::now();
        let tails = read_tails(&self.config, &input_partitions, &repartition_partitions, CALL_TIMEOUT)?;
        let mut checkpoints = tails.checkpoints;
        for partition in repartition_partitions {
            let topic = &settings.topics.repartition;
            let (offset, metadata) = committed.get(&(topic.clone(), partition)).cloned().unwrap_or_default();
            let published = tails.watermarks.get(&partition).copied().flatten();
            let start = self.aggregator.place(partition, offset, &metadata, published);
            tpl.set_partition_offset(topic, partition, Offset::Offset(start))?;
        }
        for partition in input_partitions {
            let checkpoint = checkpoints.remove(&partition).flatten();
            let mut owned = OwnedPartition::new(PartitionState::new(&settings));
            for (index, topic) in self.inputs.iter().enumerate() {
                if !assigned.contains(&(topic.clone(), partition)) {
                    continue;
                }
                let committed_at = committed.get(&(topic.clone(), partition)).and_then(|(o, _)| *o);
                let written = checkpoint.as_ref().and_then(|c| c.next.get(topic)).copied();
                let replay = checkpoint.as_ref().and_then(|c| c.replay.get(topic)).copied();
                let (enriched_from, activity_from) = match self.guarantee() {
                    // No checkpoint to replay sessions from: resume where the last commit left
                    // off, rather than re-emit all retained input.
                    Guarantee::AtLeastOnce => (committed_at.unwrap_or(0), committed_at.unwrap_or(0)),
                    // A commit follows the delivery of every output sent before it, so both the
                    // checkpoint and the committed offset mark output that is already written.
                    Guarantee::ExactlyOnceIdempotent => {
                        (written.max(committed_at).unwrap_or(0), committed_at.unwrap_or(0))
                    }
                    Guarantee::ExactlyOnceTransactional => (committed_at.unwrap_or(0), committed_at.unwrap_or(0)),
                };
                let start = [Some(enriched_from), Some(activity_from), replay].into_iter().flatten().min().unwrap_or(0);
                tracing::info!(topic, partition, start, enriched_from, activity_from, "resuming input partition");
                owned.enriched_from.insert(index, enriched_from);
                owned.activity_from.insert(index, activity_from);
                owned.next.insert(index, start);
                tpl.set_partition_offset(topic, partition, Offset::Offset(start))?;
            }
            self.partitions.insert(partition, owned);
        }
        tracing::info!(
            partitions = self.partitions.len(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "input partitions resumed"
        );
        Ok(())
    }

    /// The offsets that are safe to commit: inputs up to what has been processed, the
    /// repartition topic only up to the oldest record of a still-open window.
    fn progress(&self) -> Result<TopicPartitionList, KafkaError> {
        let mut list = TopicPartitionList::new();
        for (partition, owned) in &self.partitions {
            for (index, next) in &owned.next {
                if let Some(topic) = self.inputs.get(*index) {
                    list.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
                }
            }
        }
        self.aggregator.add_progress(&mut list, &self.config.enricher.topics.repartition)?;
        Ok(list)
    }

    /// Makes everything produced so far safe, then records progress: a consumer commit, or
    /// the offsets inside the open transaction followed by its commit.
    pub fn commit(&mut self, consumer: &GroupConsumer, settle: Settle) -> Result<(), PipelineError> {
        // The commit records the inputs these activities came from.
        for batch in self.activities.drain() {
            self.send_batch(&batch)?;
        }
        let progress = self.progress()?;
        let watermarks = self.aggregator.moved_watermarks();
        self.committer.commit(consumer, progress, watermarks, settle)
    }

    /// Gives every partition up, after a final commit unless the pipeline failed (then the
    /// next owner resumes from the last safe point).
    pub fn revoke(&mut self, consumer: &GroupConsumer, failed: bool) -> Result<(), PipelineError> {
        // Everything in flight must land before another owner (or this one, after the next
        // assignment) reads the output tails.
        let committed = if failed { Ok(()) } else { self.commit(consumer, Settle::Wait) };
        self.partitions.clear();
        self.aggregator.clear();
        self.activities.clear();
        self.committer.forget_pending();
        committed
    }

    fn send_window(&self, row: &WindowRow) -> Result<(), KafkaError> {
        EnricherMetrics::add(&self.metrics.windows_emitted, 1);
        let payload = serde_json::to_vec(row).unwrap_or_default();
        let key = row.key();
        let record = self.committer.record(&self.config.enricher.topics.aggregates);
        self.committer.send(record.key(key.as_bytes()).payload(payload.as_slice()))
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
