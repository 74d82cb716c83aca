//! `ack = none`'s watcher: one task follows every batch answered before Kafka confirmed it,
//! and spools the records Kafka then failed to take.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::StreamExt as _;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::completion::{Delivery, Pending};
use super::Record;
use crate::spool::Spool;

/// Follows answered batches until Kafka has reported on each. One task for all of them: a task
/// per request cost a spawn, and a wake-up of its own when its batch was reported.
pub(super) struct Watcher {
    batches: mpsc::UnboundedSender<Watched>,
    state: Arc<WatchState>,
    task: JoinHandle<()>,
}

/// A batch whose request was answered: its delivery reports to come, and its records with
/// their index in the batch, to spool those that fail.
struct Watched {
    pending: Pending,
    records: Vec<(u32, Record)>,
}

/// What the watcher shares with the sink: the batches handed over and not yet settled
/// (delivered, or their failures spooled), so that shutdown can wait for them, and a count of
/// what it spooled.
#[derive(Default)]
struct WatchState {
    /// Batches open.
    open: AtomicUsize,
    settled: Notify,
    /// Records sent to the spool after their answer, since start.
    spooled: AtomicU64,
}

impl WatchState {
    fn close_one(&self) {
        if self.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.settled.notify_waiters();
        }
    }
}

impl Watcher {
    /// Starts the watching task. Must run inside tokio.
    pub(super) fn start(spool: Arc<Spool>) -> Self {
        let (batches, received) = mpsc::unbounded_channel();
        let state = Arc::new(WatchState::default());
        let task = tokio::spawn(watch(received, spool, state.clone()));
        Self { batches, state, task }
    }

    pub(super) fn watch(&self, pending: Pending, records: Vec<(u32, Record)>) {
        self.state.open.fetch_add(1, Ordering::SeqCst);
        if self.batches.send(Watched { pending, records }).is_err() {
            // Only after the task ended, which it does only with the sink.
            self.state.close_one();
            tracing::error!("ack=none: the delivery watcher has stopped; these events' delivery is not followed");
        }
    }

    /// Records Kafka failed to take after their answer, sent to the spool since start.
    pub(super) fn spooled(&self) -> u64 {
        self.state.spooled.load(Ordering::Relaxed)
    }

    /// Waits until every batch handed over has settled, or `deadline`.
    pub(super) async fn settled(&self, deadline: tokio::time::Instant) {
        let state = &*self.state;
        let wait = async {
            while state.open.load(Ordering::SeqCst) > 0 {
                let notified = state.settled.notified();
                if state.open.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout_at(deadline, wait).await;
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs until the sink drops the watcher, which aborts it: batches still open then are given up,
/// as the spool's group commit stops with the sink too.
async fn watch(mut batches: mpsc::UnboundedReceiver<Watched>, spool: Arc<Spool>, state: Arc<WatchState>) {
    let mut reports = FuturesUnordered::new();
    loop {
        tokio::select! {
            batch = batches.recv() => match batch {
                Some(Watched { pending, records }) => {
                    reports.push(async move { (pending.outcome(None).await, records) });
                }
                None => return,
            },
            Some((outcome, records)) = reports.next(), if !reports.is_empty() => {
                settle(&outcome, records, &spool, &state);
            }
        }
    }
}

/// Spools what Kafka failed to take; what it refused for good is dropped (and counted), never
/// spooled. A failure spools in a task of its own, so that spool writes of many failing
/// batches share the group commit instead of waiting for each other.
fn settle(outcome: &[Delivery], records: Vec<(u32, Record)>, spool: &Arc<Spool>, state: &Arc<WatchState>) {
    let failed: Vec<Record> = records
        .into_iter()
        // A record without a report counts as failed: spooled, never silently dropped.
        .filter(|(index, _)| outcome.get(*index as usize).is_none_or(|delivery| *delivery == Delivery::Failed))
        .map(|(_, record)| record)
        .collect();
    if failed.is_empty() {
        state.close_one();
        return;
    }
    let (spool, state) = (spool.clone(), state.clone());
    let count = failed.len() as u64;
    tokio::spawn(async move {
        match spool.append(failed).await {
            Ok(()) => {
                state.spooled.fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!(%error, "ack=none: undelivered events could not be spooled and are lost");
            }
        }
        state.close_one();
    });
}
