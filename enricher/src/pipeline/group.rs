//! Consumer-group membership: deciding where each newly assigned partition resumes (and from
//! where it replays state), and making progress safe on revoke and at every commit interval.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::checkpoint::{committed, read_tail_checkpoint, Checkpoint, WindowCommit};
use super::core::{Core, OwnedPartition, OwnedWindows};
use super::PipelineError;
use crate::config::Guarantee;
use crate::metrics::EnricherMetrics;
use crate::process::PartitionState;
use crate::window::Windows;

/// The consumer's context: the pipeline state, reachable from rebalance callbacks.
#[derive(Debug)]
pub struct GroupContext {
    pub core: Mutex<Core>,
    /// Set when a callback failed; the poll loop then rebuilds the pipeline.
    pub failure: Mutex<Option<PipelineError>>,
    /// Set before the consumer is dropped after an error, so the final revoke commits nothing.
    pub poisoned: std::sync::atomic::AtomicBool,
    /// Where the consumer's librdkafka statistics go (lag per partition, for the admin port).
    pub stats: std::sync::Arc<clickstream_platform::kafka_stats::KafkaStatsCell>,
    /// The pipeline thread's slot in `stats`.
    pub stats_slot: usize,
}

pub type GroupConsumer = BaseConsumer<GroupContext>;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How a commit makes sure the outputs behind it have landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// A periodic commit: note the progress now, and commit it once Kafka has answered every
    /// output sent before it, while processing goes on.
    WhenDelivered,
    /// Before partitions change hands or the process stops: wait for the outputs, then commit.
    Wait,
}

/// Longest wait for in-flight outputs before giving partitions up or reading output tails.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.stats.record_slot(self.stats_slot, &statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let mut core = self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let placed = core.place(consumer, tpl);
                let assigned =
                    if placed.is_ok() { consumer.assign(tpl) } else { consumer.assign(&TopicPartitionList::new()) };
                placed.and(assigned.map_err(PipelineError::Kafka))
            }
            _ => {
                let committed = if self.poisoned.load(std::sync::atomic::Ordering::Relaxed) {
                    Ok(())
                } else {
                    // Everything in flight must land before another owner (or this one, after
                    // the next assignment) reads the output tails.
                    core.commit(consumer, Settle::Wait)
                };
                core.partitions.clear();
                core.windows.clear();
                core.pending_commits.clear();
                committed.and(consumer.unassign().map_err(PipelineError::Kafka))
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "rebalance");
            *self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
        }
    }
}

impl Core {
    /// Sets the start offset of every newly assigned partition and prepares its state.
    fn place(&mut self, consumer: &GroupConsumer, tpl: &mut TopicPartitionList) -> Result<(), PipelineError> {
        // Our own records still in flight would land after the tail is read, and be repeated.
        self.producer.flush(SETTLE_TIMEOUT)?;
        let assigned: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        let committed = committed(consumer, &assigned, CALL_TIMEOUT)?;
        let settings = self.config.enricher.clone();
        let mut input_partitions: Vec<i32> = Vec::new();
        for (topic, partition) in &assigned {
            if *topic == settings.topics.repartition {
                let (offset, metadata) = committed.get(&(topic.clone(), *partition)).cloned().unwrap_or_default();
                let restored: WindowCommit = serde_json::from_str(&metadata).unwrap_or_default();
                let size_ms = i64::try_from(settings.windows.size_secs.saturating_mul(1000)).unwrap_or(60_000);
                let grace_ms = i64::try_from(settings.windows.grace_secs.saturating_mul(1000)).unwrap_or(0);
                let windows = Windows::new(size_ms, grace_ms, restored.watermark_ms);
                let start = offset.unwrap_or(0);
                self.windows.insert(*partition, OwnedWindows::new(windows, start));
                tpl.set_partition_offset(topic, *partition, Offset::Offset(start))?;
            } else if !input_partitions.contains(partition) {
                input_partitions.push(*partition);
            }
        }
        let started = Instant::now();
        let mut checkpoints = self.tail_checkpoints(&input_partitions)?;
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

    /// The checkpoint at the tail of each partition's enriched output (none in at-least-once
    /// mode). Each read waits for its partition to stay quiet for a moment, so the partitions
    /// are read at once, each by its own client: one after another, a new instance took about
    /// 0.65 s per partition before serving.
    fn tail_checkpoints(&self, partitions: &[i32]) -> Result<BTreeMap<i32, Option<Checkpoint>>, PipelineError> {
        let guarantee = self.guarantee();
        if guarantee == Guarantee::AtLeastOnce {
            return Ok(partitions.iter().map(|p| (*p, None)).collect());
        }
        let (kafka, topic) = (&self.config.kafka, &self.config.enricher.topics.enriched);
        std::thread::scope(|scope| {
            let readers: Vec<_> = partitions
                .iter()
                .map(|partition| {
                    let reader = scope.spawn(move || {
                        read_tail_checkpoint(kafka, topic, *partition, super::isolation(guarantee), CALL_TIMEOUT)
                    });
                    (*partition, reader)
                })
                .collect();
            readers
                .into_iter()
                .map(|(partition, reader)| {
                    let checkpoint = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                    Ok((partition, checkpoint))
                })
                .collect()
        })
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
        let repartition = &self.config.enricher.topics.repartition;
        for (partition, owned) in &self.windows {
            let safe = owned.windows.low_water_offset().unwrap_or(owned.next).min(owned.next);
            list.add_partition_offset(repartition, *partition, Offset::Offset(safe))?;
            let metadata =
                serde_json::to_string(&WindowCommit { watermark_ms: owned.windows.watermark_ms() }).unwrap_or_default();
            if let Some(mut element) = list.find_partition(repartition, *partition) {
                element.set_metadata(metadata);
            }
        }
        Ok(list)
    }

    /// Makes everything produced so far safe, then records progress: a consumer commit, or
    /// the offsets inside the open transaction followed by its commit.
    pub fn commit(&mut self, consumer: &GroupConsumer, settle: Settle) -> Result<(), PipelineError> {
        let progress = self.progress()?;
        match self.guarantee() {
            Guarantee::AtLeastOnce | Guarantee::ExactlyOnceIdempotent => match settle {
                Settle::WhenDelivered => {
                    self.pending_commits.push_back((self.epoch, progress));
                    self.epoch += 1;
                    self.commit_delivered(consumer)
                }
                Settle::Wait => {
                    self.producer.flush(SETTLE_TIMEOUT)?;
                    self.check_deliveries()?;
                    // Everything is answered now, and this progress covers every pending one.
                    self.pending_commits.clear();
                    self.commit_offsets(consumer, &progress)
                }
            },
            Guarantee::ExactlyOnceTransactional => {
                if !self.in_transaction {
                    return Ok(());
                }
                let group = consumer
                    .group_metadata()
                    .ok_or_else(|| PipelineError::Aborted("the consumer has no group metadata yet".to_owned()))?;
                let result = (|| {
                    if progress.count() > 0 {
                        self.producer.send_offsets_to_transaction(&progress, &group, CALL_TIMEOUT)?;
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
        }
    }

    /// Commits the newest pending progress whose outputs Kafka has all answered.
    pub fn commit_delivered(&mut self, consumer: &GroupConsumer) -> Result<(), PipelineError> {
        let mut ready = None;
        while let Some((epoch, _)) = self.pending_commits.front() {
            if !self.producer.context().settled_through(*epoch) {
                break;
            }
            ready = self.pending_commits.pop_front().map(|(_, progress)| progress);
        }
        let Some(progress) = ready else { return Ok(()) };
        self.check_deliveries()?;
        self.commit_offsets(consumer, &progress)
    }

    fn check_deliveries(&self) -> Result<(), PipelineError> {
        let failures = self.producer.context().failures.load(std::sync::atomic::Ordering::Relaxed);
        if failures > 0 {
            return Err(PipelineError::Delivery(failures));
        }
        Ok(())
    }

    fn commit_offsets(&self, consumer: &GroupConsumer, progress: &TopicPartitionList) -> Result<(), PipelineError> {
        if progress.count() > 0 {
            consumer.commit(progress, CommitMode::Sync)?;
            EnricherMetrics::add(&self.metrics.offset_commits, 1);
        }
        Ok(())
    }

    /// Aborts when the error allows it; either way the pipeline restarts from the last
    /// committed transaction, with a new producer when this one is fenced or broken.
    pub fn transaction_failed(&mut self, error: &KafkaError) -> PipelineError {
        if matches!(error, KafkaError::Transaction(e) if e.is_fatal()) {
            return PipelineError::Fenced(error.to_string());
        }
        // Abortable errors, and retriable ones that librdkafka already retried until the
        // timeout, both end in an abort.
        match self.producer.abort_transaction(CALL_TIMEOUT) {
            Ok(()) => EnricherMetrics::add(&self.metrics.transaction_aborts, 1),
            Err(abort_error) => return PipelineError::Fenced(format!("{error}; abort failed: {abort_error}")),
        }
        PipelineError::Aborted(error.to_string())
    }
}
