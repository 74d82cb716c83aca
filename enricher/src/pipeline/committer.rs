//! The output side of a pipeline thread: its producer, the commit epochs whose outputs Kafka
//! must answer before their progress is committed, and the open transaction.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickstream_platform::kafka::send_waiting;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, TopicPartitionList};

use super::checkpoint::{WatermarkMark, WindowCommit};
use super::group::{GroupConsumer, Settle, SETTLE_TIMEOUT};
use super::{lock, PipelineError};
use crate::config::Guarantee;
use crate::metrics::EnricherMetrics;

/// Longest wait for one transaction call or offset commit.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts failed deliveries (any failure makes the pipeline restart from its checkpoints) and
/// the outputs still in flight per commit epoch, so a periodic commit can wait for exactly
/// the outputs sent before it without stopping the pipeline.
#[derive(Debug, Default)]
pub struct OutputContext {
    failures: AtomicU64,
    metrics: Arc<EnricherMetrics>,
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
    fn settled_through(&self, epoch: usize) -> bool {
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

    /// Outputs Kafka refused since the producer was made.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
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
pub type OutputRecord<'a> = BaseRecord<'a, [u8], [u8], usize>;

/// A periodic commit waiting for its epoch's outputs.
struct PendingCommit {
    epoch: usize,
    progress: TopicPartitionList,
    /// Window watermarks to write once the epoch's window rows are delivered; the progress
    /// waits for them in turn.
    watermarks: Vec<WatermarkMark>,
}

/// Sends outputs and commits the progress behind them, as the guarantee requires.
pub struct Committer {
    producer: Arc<OutputProducer>,
    guarantee: Guarantee,
    metrics: Arc<EnricherMetrics>,
    /// Where each repartition partition's window watermark is kept.
    watermarks_topic: String,
    /// True while a Kafka transaction is open (transactional mode).
    in_transaction: bool,
    /// Commit epoch of the outputs being sent: each periodic commit closes one.
    epoch: usize,
    /// Periodic commits waiting for their epoch's outputs, oldest first.
    pending: VecDeque<PendingCommit>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("in_transaction", &self.in_transaction)
            .field("epoch", &self.epoch)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Committer {
    pub fn new(
        producer: Arc<OutputProducer>,
        guarantee: Guarantee,
        metrics: Arc<EnricherMetrics>,
        watermarks_topic: String,
    ) -> Self {
        let pending = VecDeque::new();
        Self { producer, guarantee, metrics, watermarks_topic, in_transaction: false, epoch: 0, pending }
    }

    /// A record to `topic`, counted in the current epoch.
    pub fn record<'a>(&self, topic: &'a str) -> OutputRecord<'a> {
        BaseRecord::with_opaque_to(topic, self.epoch)
    }

    /// Enqueues a record, waiting while the local queue is full.
    pub fn send(&self, record: OutputRecord<'_>) -> Result<(), KafkaError> {
        let epoch = record.delivery_opaque;
        send_waiting(&self.producer, record)?;
        self.producer.context().sent(epoch);
        EnricherMetrics::add(&self.metrics.outputs_sent, 1);
        Ok(())
    }

    /// Opens a transaction for the outputs that follow, unless one is open (transactional
    /// mode only).
    pub fn begin(&mut self) -> Result<(), PipelineError> {
        if self.guarantee == Guarantee::ExactlyOnceTransactional && !self.in_transaction {
            self.producer.begin_transaction().map_err(|e| self.transaction_failed(&e))?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Waits until Kafka has answered every output in flight.
    pub fn flush(&self) -> Result<(), KafkaError> {
        self.producer.flush(SETTLE_TIMEOUT)
    }

    /// Serves delivery reports, and fails once any output was refused.
    pub fn poll(&self) -> Result<(), PipelineError> {
        self.producer.poll(Duration::ZERO);
        self.check_deliveries()
    }

    /// Makes everything produced so far safe, then records `progress` and the window
    /// `watermarks` it reached: a consumer commit, or the offsets inside the open transaction
    /// followed by its commit.
    ///
    /// Without a transaction, a watermark is written only after the rows of the windows it
    /// closed are delivered, and the progress only after the watermark: a partition's next
    /// owner then never takes a window for closed whose row is missing, nor resumes past
    /// records of a closed window without knowing it closed.
    pub fn commit(
        &mut self,
        consumer: &GroupConsumer,
        progress: TopicPartitionList,
        watermarks: Vec<WatermarkMark>,
        settle: Settle,
    ) -> Result<(), PipelineError> {
        match (self.guarantee, settle) {
            (Guarantee::ExactlyOnceTransactional, _) => {
                if !watermarks.is_empty() {
                    self.begin()?;
                    self.send_watermarks(&watermarks, self.epoch)?;
                }
                self.commit_transaction(consumer, &progress)
            }
            (_, Settle::WhenDelivered) => {
                self.pending.push_back(PendingCommit { epoch: self.epoch, progress, watermarks });
                self.epoch += 1;
                self.commit_delivered(consumer)
            }
            (_, Settle::Wait) => {
                self.flush()?;
                self.check_deliveries()?;
                // Everything is answered now, and this progress covers every pending one.
                let mut unsent: Vec<WatermarkMark> =
                    self.pending.drain(..).flat_map(|pending| pending.watermarks).collect();
                unsent.extend(watermarks);
                if !unsent.is_empty() {
                    self.send_watermarks(&unsent, self.epoch)?;
                    self.flush()?;
                    self.check_deliveries()?;
                }
                self.commit_offsets(consumer, &progress)
            }
        }
    }

    /// Writes each watermark to the partition of its repartition partition's number, counted
    /// in `epoch`. Later marks of a partition follow earlier ones, so its last record is the
    /// latest.
    fn send_watermarks(&self, watermarks: &[WatermarkMark], epoch: usize) -> Result<(), KafkaError> {
        for mark in watermarks {
            let payload =
                serde_json::to_vec(&WindowCommit { watermark_ms: Some(mark.watermark_ms) }).unwrap_or_default();
            let key = itoa::Buffer::new().format(mark.partition).to_owned();
            let record = BaseRecord::with_opaque_to(self.watermarks_topic.as_str(), epoch)
                .partition(mark.partition)
                .key(key.as_bytes())
                .payload(payload.as_slice());
            self.send(record)?;
        }
        Ok(())
    }

    fn commit_transaction(
        &mut self,
        consumer: &GroupConsumer,
        progress: &TopicPartitionList,
    ) -> Result<(), PipelineError> {
        if !self.in_transaction {
            return Ok(());
        }
        let group = consumer
            .group_metadata()
            .ok_or_else(|| PipelineError::Aborted("the consumer has no group metadata yet".to_owned()))?;
        let result = (|| {
            if progress.count() > 0 {
                self.producer.send_offsets_to_transaction(progress, &group, CALL_TIMEOUT)?;
            }
            self.producer.commit_transaction(CALL_TIMEOUT)
        })();
        self.in_transaction = false;
        match result {
            Ok(()) => {
                EnricherMetrics::add(&self.metrics.transaction_commits, 1);
                Ok(())
            }
            Err(error) => Err(self.transaction_failed(&error)),
        }
    }

    /// True while a periodic commit waits for its outputs.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Drops the commits still waiting: their partitions were given up after a final commit.
    pub fn forget_pending(&mut self) {
        self.pending.clear();
    }

    /// Commits the newest pending progress whose outputs Kafka has all answered, its window
    /// watermarks included: those are sent once the rest is answered.
    pub fn commit_delivered(&mut self, consumer: &GroupConsumer) -> Result<(), PipelineError> {
        let mut ready = None;
        while let Some(front) = self.pending.front_mut() {
            if !self.producer.context().settled_through(front.epoch) {
                break;
            }
            if !front.watermarks.is_empty() {
                let (watermarks, epoch) = (std::mem::take(&mut front.watermarks), front.epoch);
                self.send_watermarks(&watermarks, epoch)?;
                break;
            }
            ready = self.pending.pop_front().map(|pending| pending.progress);
        }
        let Some(progress) = ready else { return Ok(()) };
        self.check_deliveries()?;
        self.commit_offsets(consumer, &progress)
    }

    fn check_deliveries(&self) -> Result<(), PipelineError> {
        let failures = self.producer.context().failures();
        if failures > 0 {
            return Err(PipelineError::Delivery(failures));
        }
        Ok(())
    }

    fn commit_offsets(&self, consumer: &GroupConsumer, progress: &TopicPartitionList) -> Result<(), PipelineError> {
        if progress.count() == 0 {
            return Ok(());
        }
        match consumer.commit(progress, CommitMode::Sync) {
            Ok(()) => {
                EnricherMetrics::add(&self.metrics.offset_commits, 1);
                Ok(())
            }
            // A member joined or left while this commit was on its way. The partitions are
            // still ours until the revocation this rebalance brings, which commits again;
            // restarting the pipeline instead would leave the group and start another
            // rebalance, and a group whose members keep restarting never settles.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress)) => {
                EnricherMetrics::add(&self.metrics.offset_commits_deferred, 1);
                tracing::debug!("offset commit deferred: the group is rebalancing");
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Aborts when the error allows it; either way the pipeline restarts from the last
    /// committed transaction, with a new producer when this one is fenced or broken.
    pub fn transaction_failed(&mut self, error: &KafkaError) -> PipelineError {
        if matches!(error, KafkaError::Transaction(e) if e.is_fatal()) {
            return PipelineError::Fenced(error.to_string());
        }
        // Abortable errors, and retriable ones that librdkafka already retried until the
        // timeout, both end in an abort.
        self.in_transaction = false;
        match self.producer.abort_transaction(CALL_TIMEOUT) {
            Ok(()) => EnricherMetrics::add(&self.metrics.transaction_aborts, 1),
            Err(abort_error) => return PipelineError::Fenced(format!("{error}; abort failed: {abort_error}")),
        }
        PipelineError::Aborted(error.to_string())
    }

    /// After a failure: whatever failed, the open transaction's records must not become
    /// visible.
    pub fn abort_open(&mut self) {
        if self.in_transaction {
            self.in_transaction = false;
            if self.producer.abort_transaction(Duration::from_secs(5)).is_ok() {
                EnricherMetrics::add(&self.metrics.transaction_aborts, 1);
            }
        }
    }
}
