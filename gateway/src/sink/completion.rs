//! One completion per produced batch: each record carries a ticket to its batch, librdkafka's
//! delivery callback counts the batch down, and the last report wakes the waiting request
//! once. This replaces a future and a channel per record.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// Every record handed to the producer and not yet reported, and every report so far: what
/// load shedding reads (see `shedding`).
#[derive(Debug, Default)]
pub struct Backlog {
    waiting: AtomicUsize,
    reported: AtomicU64,
    confirmed: AtomicU64,
    rejected: AtomicU64,
}

impl Backlog {
    /// Records queued in the producer or in flight to Kafka.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Delivery reports received since start, confirmed or failed.
    pub fn reported(&self) -> u64 {
        self.reported.load(Ordering::Relaxed)
    }

    /// Records Kafka confirmed since start: while this grows, Kafka is answering.
    pub fn confirmed(&self) -> u64 {
        self.confirmed.load(Ordering::Relaxed)
    }

    /// Records Kafka refused for good since start (see [`Delivery::Rejected`]).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// What became of one record handed to the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Kafka confirmed it.
    Confirmed,
    /// Not confirmed: an outage, a timeout, a full queue. Sending it again may succeed.
    Failed,
    /// Refused for good: larger than `message.max.bytes` (the producer's or the topic's).
    /// Sent again it would fail the same way, and in a spool it would hold back every record
    /// behind it.
    Rejected,
}

/// What a batch's delivery reports add up to so far.
#[derive(Debug)]
struct Countdown {
    backlog: Arc<Backlog>,
    remaining: AtomicUsize,
    /// Records Kafka did not confirm, by index; written only on failure, which is rare.
    unconfirmed: Mutex<Vec<(u32, Delivery)>>,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

impl Countdown {
    fn settle(&self, index: u32, delivery: Delivery) {
        if delivery == Delivery::Confirmed {
            self.backlog.confirmed.fetch_add(1, Ordering::Relaxed);
        } else {
            if delivery == Delivery::Rejected {
                self.backlog.rejected.fetch_add(1, Ordering::Relaxed);
            }
            self.unconfirmed.lock().unwrap_or_else(|p| p.into_inner()).push((index, delivery));
        }
        self.backlog.waiting.fetch_sub(1, Ordering::Relaxed);
        self.backlog.reported.fetch_add(1, Ordering::Relaxed);
        // The last report of the batch wakes the waiter; the others only count.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(done) = self.done.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = done.send(());
            }
        }
    }
}

/// The delivery opaque of one record: its batch and its place in it. It counts its batch
/// down when dropped, as failed unless a delivery report said otherwise, so a record the
/// producer refused or lost can never leave its request waiting.
#[derive(Debug)]
pub(super) struct Ticket {
    batch: Arc<Countdown>,
    index: u32,
    delivery: Delivery,
}

impl Ticket {
    /// Called once per record: from librdkafka's delivery callback, or when the producer
    /// refused to queue it.
    pub(super) fn settle(mut self, delivery: Delivery) {
        self.delivery = delivery;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.batch.settle(self.index, self.delivery);
    }
}

/// A batch being produced; resolves when every record has a delivery report.
#[derive(Debug)]
pub struct Pending {
    batch: Arc<Countdown>,
    done: oneshot::Receiver<()>,
    count: usize,
    /// Records the producer refused when they were queued (queue full, unknown topic).
    refused: Vec<u32>,
}

impl Pending {
    pub(super) fn new(count: usize, backlog: &Arc<Backlog>) -> Self {
        let (sender, done) = oneshot::channel();
        // An empty batch has nothing to wait for.
        let sender = match count {
            0 => {
                let _ = sender.send(());
                None
            }
            _ => Some(sender),
        };
        backlog.waiting.fetch_add(count, Ordering::Relaxed);
        let batch = Arc::new(Countdown {
            backlog: backlog.clone(),
            remaining: AtomicUsize::new(count),
            unconfirmed: Mutex::new(Vec::new()),
            done: Mutex::new(sender),
        });
        Self { batch, done, count, refused: Vec::new() }
    }

    /// The ticket for record `index`, to hand to the producer with it.
    pub(super) fn ticket(&self, index: usize) -> Box<Ticket> {
        Box::new(Ticket { batch: self.batch.clone(), index: index as u32, delivery: Delivery::Failed })
    }

    /// Record `index` was not queued for a passing reason (a full queue); its ticket, dropped
    /// with it, counts it as failed.
    pub(super) fn refuse(&mut self, index: usize) {
        self.refused.push(index as u32);
    }

    /// Indexes of the records that were refused for a passing reason when they were queued,
    /// in order.
    pub fn refused(&self) -> &[u32] {
        &self.refused
    }

    /// What became of each record, once all are reported. When `deadline` passes first,
    /// nothing is known to be delivered: all are `Failed`.
    pub async fn outcome(self, deadline: Option<Duration>) -> Vec<Delivery> {
        let reported = match deadline {
            None => self.done.await.is_ok(),
            Some(deadline) => matches!(tokio::time::timeout(deadline, self.done).await, Ok(Ok(()))),
        };
        if !reported {
            return vec![Delivery::Failed; self.count];
        }
        let mut outcome = vec![Delivery::Confirmed; self.count];
        for (index, delivery) in self.batch.unconfirmed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            outcome[*index as usize] = *delivery;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Delivery::{Confirmed, Failed, Rejected};

    #[tokio::test]
    async fn wakes_once_all_are_reported_and_names_the_failures() {
        let backlog = Arc::default();
        let mut pending = Pending::new(4, &backlog);
        let (first, second, third, fourth) =
            (pending.ticket(0), pending.ticket(1), pending.ticket(2), pending.ticket(3));
        pending.refuse(1);
        drop(second);
        first.settle(Confirmed);
        third.settle(Failed);
        fourth.settle(Rejected);
        assert_eq!(pending.refused(), [1]);
        assert_eq!(pending.outcome(Some(Duration::from_secs(5))).await, [Confirmed, Failed, Failed, Rejected]);
        assert_eq!((backlog.waiting(), backlog.reported(), backlog.confirmed(), backlog.rejected()), (0, 4, 1, 1));
    }

    #[tokio::test]
    async fn a_missing_report_is_all_failed_at_the_deadline() {
        let backlog = Arc::new(Backlog::default());
        let pending = Pending::new(2, &backlog);
        pending.ticket(0).settle(Confirmed);
        let _unreported = pending.ticket(1);
        assert_eq!(pending.outcome(Some(Duration::from_millis(20))).await, [Failed, Failed]);
        assert_eq!((backlog.waiting(), backlog.reported()), (1, 1));
        assert_eq!(Pending::new(0, &backlog).outcome(Some(Duration::from_millis(20))).await, Vec::<Delivery>::new());
    }
}
