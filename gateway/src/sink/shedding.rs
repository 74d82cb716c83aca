//! Early load shedding: whether the events already waiting for Kafka would take longer than
//! `delivery.shed_wait_ms` to drain at the recent delivery rate. A request that would only
//! wait, miss `delivery.enqueue_deadline_ms` and be spooled gets a fast 503 instead.
//!
//! The drain rate is forgotten while Kafka is unreachable: an outage says nothing about how
//! fast a reachable Kafka drains, and a rate of about zero learnt during one would shed every
//! request after the brokers come back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::completion::Backlog;

/// Below this many waiting records there is nothing to shed, whatever the rate: a burst after
/// an idle spell has no recent rate to divide by.
const MIN_WAITING: usize = 1_000;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Weight of the newest sample in the drain rate; about a second of memory.
const NEWEST_WEIGHT: f64 = 0.2;

/// Reads the backlog against the delivery rate, which a task samples every 100 ms.
#[derive(Debug)]
pub struct Shedder {
    backlog: Arc<Backlog>,
    /// Delivery reports per second while busy, smoothed; an `f64` in its bits, NaN until known.
    drain_rate: Arc<AtomicU64>,
    max_wait: Duration,
    /// `None` when shedding is off: nothing reads the rate, so nothing samples it.
    sampler: Option<JoinHandle<()>>,
}

impl Shedder {
    /// `max_wait` of zero never sheds; `reachable` says whether Kafka answers now. Must run
    /// inside tokio.
    pub fn new(backlog: Arc<Backlog>, max_wait: Duration, reachable: impl Fn() -> bool + Send + 'static) -> Self {
        let drain_rate = Arc::new(AtomicU64::new(f64::NAN.to_bits()));
        let sampler =
            (!max_wait.is_zero()).then(|| tokio::spawn(sample(backlog.clone(), drain_rate.clone(), reachable)));
        Self { backlog, drain_rate, max_wait, sampler }
    }

    /// How long the records now waiting would take to drain, when that is longer than
    /// `delivery.shed_wait_ms`; `None` when there is no reason to shed.
    pub fn expected_wait(&self) -> Option<Duration> {
        let rate = f64::from_bits(self.drain_rate.load(Ordering::Relaxed));
        excess_wait(self.backlog.waiting(), rate, self.max_wait)
    }
}

/// Little's law: what waits, over what leaves per second, is how long a new arrival waits. A
/// stalled producer (a rate near 0) reads as a very long wait; an unknown rate (NaN) as none.
fn excess_wait(waiting: usize, rate: f64, max_wait: Duration) -> Option<Duration> {
    if max_wait.is_zero() || waiting < MIN_WAITING || rate.is_nan() {
        return None;
    }
    let wait = Duration::from_secs_f64((waiting as f64 / rate.max(1.0)).min(3_600.0));
    (wait > max_wait).then_some(wait)
}

impl Drop for Shedder {
    fn drop(&mut self) {
        if let Some(sampler) = &self.sampler {
            sampler.abort();
        }
    }
}

/// The drain rate, learnt only from samples during which records waited throughout: an idle
/// producer drains as fast as events arrive, which says nothing about how fast it could.
#[derive(Debug, Default)]
struct DrainRate {
    smoothed: Option<f64>,
}

impl DrainRate {
    /// Reports per second so far; NaN until a busy sample has been seen.
    fn observe(&mut self, drained: u64, elapsed: Duration, busy_throughout: bool) -> f64 {
        if busy_throughout {
            let newest = drained as f64 / elapsed.as_secs_f64().max(1e-3);
            self.smoothed = Some(self.smoothed.map_or(newest, |old| old + NEWEST_WEIGHT * (newest - old)));
        }
        self.smoothed.unwrap_or(f64::NAN)
    }
}

async fn sample(backlog: Arc<Backlog>, drain_rate: Arc<AtomicU64>, reachable: impl Fn() -> bool) {
    let mut rate = DrainRate::default();
    let (mut last_reported, mut last_at, mut was_busy) = (backlog.reported(), Instant::now(), false);
    loop {
        tokio::time::sleep(SAMPLE_EVERY).await;
        if !reachable() {
            rate = DrainRate::default();
            drain_rate.store(f64::NAN.to_bits(), Ordering::Relaxed);
            (last_reported, last_at, was_busy) = (backlog.reported(), Instant::now(), false);
            continue;
        }
        let (reported, now, busy) = (backlog.reported(), Instant::now(), backlog.waiting() >= MIN_WAITING);
        let drained = reported.saturating_sub(last_reported);
        let smoothed = rate.observe(drained, now.duration_since(last_at), was_busy && busy);
        drain_rate.store(smoothed.to_bits(), Ordering::Relaxed);
        (last_reported, last_at, was_busy) = (reported, now, busy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_learnt_only_while_busy() {
        let mut rate = DrainRate::default();
        let tenth = Duration::from_millis(100);
        assert!(rate.observe(10, tenth, false).is_nan(), "an idle spell teaches nothing");
        assert_eq!(rate.observe(5_000, tenth, true), 50_000.0);
        assert_eq!(rate.observe(10, tenth, false), 50_000.0, "idle samples keep the estimate");
        assert_eq!(rate.observe(0, tenth, true), 40_000.0, "a stall pulls it down");
    }

    #[test]
    fn sheds_only_past_the_wait_with_enough_waiting() {
        let half = Duration::from_millis(500);
        assert_eq!(excess_wait(30_000, 50_000.0, half), Some(Duration::from_millis(600)));
        assert_eq!(excess_wait(20_000, 50_000.0, half), None, "400 ms is within the wait");
        assert_eq!(excess_wait(MIN_WAITING - 1, 0.0, half), None, "too few to shed");
        assert_eq!(excess_wait(30_000, f64::NAN, half), None, "no rate known yet");
        assert_eq!(excess_wait(30_000, 50_000.0, Duration::ZERO), None, "0 turns shedding off");
        assert!(excess_wait(5_000, 0.0, half).is_some(), "a stalled producer sheds");
    }
}
