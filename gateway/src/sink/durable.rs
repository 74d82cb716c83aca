//! The durable sink: the ack-mode policy over the Kafka sink and the disk spool. It answers
//! after Kafka's delivery report, or after a durable spool write when Kafka cannot take the
//! events in time, and replays the spool into Kafka in order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{EventSink, KafkaSink, Record, SinkError, SinkHealth};
use crate::config::AckMode;
use crate::spool::{Spool, SpoolError};

/// Ack-mode policy: Kafka first, the spool when Kafka is down, slow, or already backlogged.
pub struct DurableSink {
    kafka: Arc<KafkaSink>,
    spool: Arc<Spool>,
    ack: AckMode,
    enqueue_deadline: Duration,
    /// `ack = none` deliveries still being watched, so shutdown can wait for them.
    watchers: Arc<(AtomicUsize, Notify)>,
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
        let watchers = Arc::new((AtomicUsize::new(0), Notify::new()));
        Self { kafka, spool, ack, enqueue_deadline, watchers, replayer, group_commit }
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
        let (spool, watchers) = (self.spool.clone(), self.watchers.clone());
        watchers.0.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let confirmed = pending.outcome(None).await;
            let failed: Vec<Record> = watched
                .into_iter()
                .filter(|(index, _)| !confirmed[*index as usize])
                .map(|(_, record)| record)
                .collect();
            if !failed.is_empty() {
                if let Err(error) = spool.append(failed).await {
                    tracing::error!(%error, "ack=none: undelivered events could not be spooled and are lost");
                }
            }
            if watchers.0.fetch_sub(1, Ordering::SeqCst) == 1 {
                watchers.1.notify_waiters();
            }
        });
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
            let confirmed = self.kafka.produce(&records, Some(self.enqueue_deadline)).await;
            if confirmed.iter().all(|ok| *ok) {
                return Ok(());
            }
            self.kafka.purge_queued();
            let undelivered = records.into_iter().zip(confirmed).filter(|(_, ok)| !ok).map(|(r, _)| r).collect();
            self.spool_all(undelivered).await
        })
    }

    /// Only while Kafka is the way in: with `ack = spool`, or while Kafka is unreachable, the
    /// spool takes the events and there is nothing to wait behind.
    fn shed(&self) -> Option<Duration> {
        (self.ack != AckMode::Spool).then(|| self.kafka.shed()).flatten()
    }

    fn health(&self) -> SinkHealth {
        let stats = self.spool.stats();
        if self.spool.is_full() {
            SinkHealth::Unavailable(format!("Kafka is behind and the spool is full ({} bytes)", stats.bytes))
        } else if !self.kafka.is_reachable() {
            SinkHealth::Degraded(format!("Kafka is unreachable; spooling to disk ({} events waiting)", stats.records))
        } else if stats.records > 0 {
            SinkHealth::Degraded(format!("replaying {} spooled events into Kafka", stats.records))
        } else {
            SinkHealth::Ready
        }
    }

    fn spool_stats(&self) -> Option<crate::spool::SpoolStats> {
        Some(self.spool.stats())
    }

    fn shutdown(&self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.replayer.abort();
            if !self.kafka.flush(grace).await {
                // Whatever is still queued goes to the spool through its watcher.
                self.kafka.purge_queued();
            }
            let (count, idle) = &*self.watchers;
            let wait = async {
                while count.load(Ordering::SeqCst) > 0 {
                    let notified = idle.notified();
                    if count.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    notified.await;
                }
            };
            let _ = tokio::time::timeout(grace, wait).await;
            if let Err(error) = self.spool.clone().sync_now().await {
                tracing::error!(%error, "spool fsync at shutdown failed");
            }
            self.group_commit.abort();
        })
    }
}

impl Drop for DurableSink {
    fn drop(&mut self) {
        self.replayer.abort();
        self.group_commit.abort();
    }
}

/// Moves spooled records into Kafka, oldest first; a segment is deleted only after every one
/// of its records has a delivery report.
async fn replay(kafka: Arc<KafkaSink>, spool: Arc<Spool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if spool.is_empty() {
            tokio::select! {
                () = spool.arrived.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        if !kafka.is_reachable() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let (batch, mark) = match spool.next_batch().await {
            Ok(Some(next)) => next,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(%error, "cannot read the spool");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let records: Vec<Record> = batch.into_iter().map(|s| s.record).collect();
        if kafka.produce(&records, None).await.iter().all(|ok| *ok) {
            if let Err(error) = spool.commit(mark).await {
                tracing::error!(%error, "cannot advance the spool");
            }
            backoff = Duration::from_millis(100);
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
