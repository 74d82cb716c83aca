//! The durable sink: the ack-mode policy over the Kafka sink and the disk spool. It answers
//! after Kafka's delivery report, or after a durable spool write when Kafka cannot take the
//! events in time, and replays the spool into Kafka in order.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use super::completion::Delivery;
use super::kafka::settled;
use super::replay::replay;
use super::watch::Watcher;
use super::{EventSink, KafkaSink, Record, SinkError, SinkHealth};
use crate::config::AckMode;
use crate::spool::{Spool, SpoolError};

/// Ack-mode policy: Kafka first, the spool when Kafka is down, slow, or already backlogged.
pub struct DurableSink {
    kafka: Arc<KafkaSink>,
    spool: Arc<Spool>,
    ack: AckMode,
    enqueue_deadline: Duration,
    /// Follows `ack = none` batches after their answer.
    watcher: Watcher,
    replayer: JoinHandle<()>,
    group_commit: JoinHandle<()>,
}

impl std::fmt::Debug for DurableSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableSink").field("ack", &self.ack).field("spool", &self.spool.stats()).finish()
    }
}

impl DurableSink {
    /// Starts the replayer and the spool's group commit. Must run inside tokio.
    pub fn new(kafka: Arc<KafkaSink>, spool: Arc<Spool>, ack: AckMode, enqueue_deadline: Duration) -> Self {
        let replayer = tokio::spawn(replay(kafka.clone(), spool.clone()));
        let group_commit = tokio::spawn(spool.clone().run_group_commit());
        let watcher = Watcher::start(spool.clone());
        Self { kafka, spool, ack, enqueue_deadline, watcher, replayer, group_commit }
    }

    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }

    async fn spool_all(&self, records: Vec<Record>) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        self.spool.append(records).await.map_err(spool_refused)
    }

    /// `ack = none`: answer now; whatever Kafka later refuses goes to the spool.
    async fn enqueue_and_watch(&self, records: Vec<Record>) -> Result<(), SinkError> {
        let pending = self.kafka.enqueue(&records);
        // The queued records stay with the watcher, which spools those Kafka did not confirm.
        let (watched, refused_now) = split_refused(records, pending.refused());
        self.watcher.watch(pending, watched);
        self.spool_all(refused_now).await
    }
}

/// Splits records into those queued (with their index in the batch) and those the producer
/// refused at once, which the request spools itself.
fn split_refused(records: Vec<Record>, refused: &[u32]) -> (Vec<(u32, Record)>, Vec<Record>) {
    let (mut queued, mut refused_now) = (Vec::with_capacity(records.len()), Vec::new());
    let mut next_refused = refused.iter().peekable();
    for (index, record) in (0u32..).zip(records) {
        if next_refused.peek() == Some(&&index) {
            next_refused.next();
            refused_now.push(record);
        } else {
            queued.push((index, record));
        }
    }
    (queued, refused_now)
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(spool_refused)`
fn spool_refused(error: SpoolError) -> SinkError {
    SinkError::Unavailable(format!("Kafka cannot take the events and {error}"))
}

impl EventSink for DurableSink {
    fn deliver(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if self.ack == AckMode::Spool || !self.kafka.is_reachable() {
                return self.spool_all(records).await;
            }
            // While a backlog drains, new events queue behind it so order holds.
            let records = if self.spool.is_empty() {
                records
            } else {
                match self.spool.append_behind_backlog(records).await.map_err(spool_refused)? {
                    Some(records) => records,
                    None => return Ok(()),
                }
            };
            if self.ack == AckMode::None {
                return self.enqueue_and_watch(records).await;
            }
            let outcome = self.kafka.produce(&records, Some(self.enqueue_deadline)).await;
            if outcome.iter().all(|delivery| *delivery == Delivery::Confirmed) {
                return Ok(());
            }
            // The records stay queued too: purging the queue would fail every other batch in
            // it, and it bumps the idempotent producer's epoch, which Tansu then refuses.
            let undelivered = records
                .into_iter()
                .zip(&outcome)
                .filter(|(_, delivery)| **delivery == Delivery::Failed)
                .map(|(record, _)| record)
                .collect();
            self.spool_all(undelivered).await?;
            // Spooled records are safe; one Kafka refused for good is the client's to fix.
            if outcome.contains(&Delivery::Rejected) {
                return settled(&outcome);
            }
            Ok(())
        })
    }

    fn rejected_by_kafka(&self) -> u64 {
        self.kafka.rejected()
    }

    fn spooled_after_answer(&self) -> u64 {
        self.watcher.spooled()
    }

    /// Only while Kafka is the way in. With `ack = spool`, while Kafka is unreachable, or while
    /// a backlog replays, the spool takes new events, so they wait behind nothing in Kafka; the
    /// replayed records that fill the producer then are not theirs to wait for.
    fn shed(&self) -> Option<Duration> {
        (self.ack != AckMode::Spool && self.spool.is_empty()).then(|| self.kafka.shed()).flatten()
    }

    fn health(&self) -> SinkHealth {
        let stats = self.spool.stats();
        if self.spool.is_full() {
            SinkHealth::Unavailable(format!("Kafka is behind and the spool is full ({} bytes)", stats.bytes))
        } else if !self.kafka.is_reachable() {
            SinkHealth::Degraded(format!(
                "{}; spooling to disk ({} events waiting)",
                self.kafka.unreachable_reason(),
                stats.records
            ))
        } else if stats.records > 0 {
            SinkHealth::Degraded(format!("replaying {} spooled events into Kafka", stats.records))
        } else {
            SinkHealth::Ready
        }
    }

    fn spool_stats(&self) -> Option<crate::spool::SpoolStats> {
        Some(self.spool.stats())
    }

    /// Flushes, then replays the spool while Kafka takes it, all by `deadline`; the last
    /// moments are kept for writing what Kafka refused to disk.
    fn shutdown(&self, deadline: tokio::time::Instant) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let before = self.spool.stats();
            let kafka_until = deadline.checked_sub(SPOOL_RESERVE).unwrap_or(deadline);
            if !self.kafka.flush(kafka_until.saturating_duration_since(tokio::time::Instant::now())).await {
                // Whatever is still queued goes to the spool through its request or watcher.
                self.kafka.purge_queued();
            }
            self.watcher.settled(deadline).await;
            let replayed = self.replay_until(kafka_until).await;
            self.replayer.abort();
            if let Err(error) = self.spool.clone().sync_now().await {
                tracing::error!(%error, "spool fsync at shutdown failed");
            }
            self.group_commit.abort();
            let left = self.spool.stats();
            if left.records == 0 {
                tracing::info!(replayed, "shutdown: the spool is empty");
            } else {
                tracing::warn!(
                    replayed,
                    records = left.records,
                    bytes = left.bytes,
                    spooled_at_start = before.records,
                    dir = %self.spool.dir().display(),
                    "shutdown: events stay in the spool; the next start or `clickstream spool replay` sends them"
                );
            }
        })
    }
}

/// Part of the shutdown budget kept for spooling what Kafka refused and the final fsync.
const SPOOL_RESERVE: Duration = Duration::from_millis(500);

impl DurableSink {
    /// Lets the replayer run until the spool is empty, Kafka is unreachable, or `until`;
    /// returns how many records it moved meanwhile.
    async fn replay_until(&self, until: tokio::time::Instant) -> u64 {
        let start = self.spool.stats().records;
        while !self.spool.is_empty() && self.kafka.is_reachable() && tokio::time::Instant::now() < until {
            let _ = tokio::time::timeout_at(until, tokio::time::sleep(Duration::from_millis(20))).await;
        }
        start.saturating_sub(self.spool.stats().records)
    }
}

impl Drop for DurableSink {
    fn drop(&mut self) {
        self.replayer.abort();
        self.group_commit.abort();
    }
}
