//! CPU overload detection: how late the gateway's runtime runs a task that asked to wake at a
//! given time. A request arriving now waits in the same run queues, so this lag is the wait a
//! new request has before its handler even starts (see `rate_limit.shed_lag_ms`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// How often the probe asks to be woken. Short enough to see a queue forming within a few
/// tens of milliseconds; one timer wake-up per period costs nothing measurable.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// Weight of the newest sample. One late wake-up (a long request on a worker, the OS
/// preempting the process) moves the estimate by less than a third of its lateness, while a
/// lasting queue shows within a few probes.
const NEWEST_WEIGHT: f64 = 0.3;

/// What the probe shares with requests: microseconds since `base`, so an atomic can hold them.
#[derive(Debug)]
struct Probe {
    base: Instant,
    /// When the probe should next run; a request past it sees the lag as it builds up, as if
    /// the probe had run now, before the probe itself gets to run and report it.
    due_us: AtomicU64,
    /// Smoothed lateness of the probe's past wake-ups.
    smoothed_us: AtomicU64,
}

impl Probe {
    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }
}

/// The runtime's scheduling lag against `rate_limit.shed_lag_ms`.
#[derive(Debug)]
pub struct SchedulingLag {
    probe: Arc<Probe>,
    max_lag: Duration,
    /// `None` when off (`shed_lag_ms = 0`), or when built outside a runtime.
    sampler: Option<JoinHandle<()>>,
}

impl SchedulingLag {
    /// Starts the probe on the current tokio runtime, the one that will serve requests.
    pub fn new(max_lag: Duration) -> Self {
        let base = Instant::now();
        let probe = Arc::new(Probe { base, due_us: AtomicU64::new(u64::MAX), smoothed_us: AtomicU64::new(0) });
        let sampler = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !max_lag.is_zero() => Some(runtime.spawn(sample(probe.clone()))),
            _ => None,
        };
        Self { probe, max_lag, sampler }
    }

    /// The current lag, when it is over `shed_lag_ms`; `None` when there is no reason to shed.
    pub fn excess(&self) -> Option<Duration> {
        self.sampler.as_ref()?;
        let now = self.probe.now_us();
        let overdue = now.saturating_sub(self.probe.due_us.load(Ordering::Relaxed)) as f64;
        let smoothed = self.probe.smoothed_us.load(Ordering::Relaxed) as f64;
        let lag = Duration::from_micros(smoothed.max(smoothed + NEWEST_WEIGHT * (overdue - smoothed)) as u64);
        (lag > self.max_lag).then_some(lag)
    }
}

impl Drop for SchedulingLag {
    fn drop(&mut self) {
        if let Some(sampler) = &self.sampler {
            sampler.abort();
        }
    }
}

async fn sample(probe: Arc<Probe>) {
    let mut smoothed = 0.0_f64;
    loop {
        let due = probe.now_us() + PROBE_EVERY.as_micros() as u64;
        probe.due_us.store(due, Ordering::Relaxed);
        tokio::time::sleep(PROBE_EVERY).await;
        let late = probe.now_us().saturating_sub(due) as f64;
        smoothed += NEWEST_WEIGHT * (late - smoothed);
        probe.smoothed_us.store(smoothed as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One runtime thread kept busy by a handler that never yields: exactly what a saturated
    /// core does to every request queued behind it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_runtime_is_seen_while_busy_and_forgotten_after() {
        let lag = SchedulingLag::new(Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(lag.excess(), None, "an idle runtime runs its probe on time");

        hog(Duration::from_millis(100));
        assert_eq!(lag.excess(), None, "one short stall moves the estimate by 30% of it");
        tokio::time::sleep(Duration::from_millis(100)).await;

        hog(Duration::from_millis(400));
        let seen = lag.excess().expect("the probe is 390 ms overdue");
        assert!(seen >= Duration::from_millis(100), "{seen:?}");

        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(lag.excess(), None, "once the runtime keeps up, the lag decays");
    }

    fn hog(cpu: Duration) {
        let started = Instant::now();
        while started.elapsed() < cpu {
            std::hint::spin_loop();
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn zero_turns_it_off() {
        let lag = SchedulingLag::new(Duration::ZERO);
        hog(Duration::from_millis(400));
        assert_eq!(lag.excess(), None);
    }
}
