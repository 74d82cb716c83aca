//! A run: phases offered open-loop through a pool, and what they measured. Latency counts from
//! each request's intended send time, so a stalled server shows up in the percentiles
//! instead of quietly slowing the load (wrk2's correction for coordinated omission). A
//! request that waits for a free connection longer than the late threshold is counted late;
//! one that finds `max_backlog` of requests already queued is counted dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clock::Clock;
use crate::e2e::Matcher;
use crate::payload::catalog::Catalog;
use crate::payload::ids::Sequence;
use crate::payload::source::RequestSource;
use crate::payload::{Generator, Mode, Protocol};
use crate::plan::Phase;
use crate::pool::{Dispatched, Pool, RunState};
use crate::progress::Progress;
use crate::stats::{Percentiles, PhaseStats, Recorder, Second};
use crate::target::Target;

/// How requests are made and sent, whatever the rate.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    /// The tracker protocol requests speak (Segment's unless asked).
    pub protocol: Protocol,
    /// Keep-alive connections (or concurrent produce calls for raw-kafka).
    pub connections: usize,
    pub request_timeout: Duration,
    /// A send that starts later than this after its intended time is counted late.
    pub late_threshold: Duration,
    /// The queue holds at most this much of the peak rate; beyond it, sends are dropped.
    pub max_backlog: Duration,
    /// Simulated visitors, shared out between connections.
    pub visitors: usize,
    pub seed: u64,
    pub catalog: Arc<Catalog>,
    pub write_key: String,
}

impl RunOptions {
    /// What each request carries, for reports: the mode, and the protocol unless Segment's.
    pub fn label(&self) -> String {
        match (self.protocol, self.mode) {
            (Protocol::Segment, mode) => mode.label(),
            (protocol, Mode::Batch { events }) if protocol.batches() => {
                format!("{} batches of {events}", protocol.as_str())
            }
            (protocol, _) => format!("{}, one event per request", protocol.as_str()),
        }
    }

    /// Where connection `index` of `count` takes its requests: a ring when the target reads no
    /// body, else fresh from the visitors.
    pub(crate) fn connection_requests(
        &self,
        reads_bodies: bool,
        sequence: &Sequence,
        index: usize,
        count: usize,
    ) -> RequestSource {
        let generator = self.connection_generator(sequence, index, count);
        if reads_bodies {
            RequestSource::fresh(generator)
        } else {
            RequestSource::ring(generator)
        }
    }

    /// The payload generator of connection `index` of `count`: its share of the visitors, and
    /// a seed of its own, so connections do not all send the same visitors.
    pub(crate) fn connection_generator(&self, sequence: &Sequence, index: usize, count: usize) -> Generator {
        Generator::new(
            self.catalog.clone(),
            (self.visitors / count.max(1)).max(1),
            self.seed.wrapping_add(index as u64 * 7919),
            sequence.clone(),
            &self.write_key,
            self.mode,
        )
        .with_protocol(self.protocol)
    }
}

/// Shared by every run of one command: the clock, the message-id sequence, the timeline.
#[derive(Debug)]
pub struct Session {
    pub clock: Clock,
    pub sequence: Sequence,
    pub progress: Progress,
    seconds: Mutex<Vec<Second>>,
}

impl Session {
    pub fn new(progress: Progress) -> Self {
        let run = u32::try_from(fastrand::u64(..) >> 32).unwrap_or(1);
        Self { clock: Clock::start(), sequence: Sequence::new(run), progress, seconds: Mutex::new(Vec::new()) }
    }

    /// Takes the per-second timeline recorded since the last call.
    pub fn take_timeline(&self) -> Vec<crate::stats::TimelinePoint> {
        let seconds = self.seconds.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
        Recorder { phases: Vec::new(), seconds }.timeline()
    }

    pub(crate) fn merge_seconds(&self, from: Vec<Second>) {
        let Ok(mut seconds) = self.seconds.lock() else { return };
        if seconds.len() < from.len() {
            seconds.resize_with(from.len(), Second::default);
        }
        for (into, second) in seconds.iter_mut().zip(from) {
            let _ = into.latency.add(&second.latency);
            into.scheduled += second.scheduled;
            into.ok_requests += second.ok_requests;
            into.ok_events += second.ok_events;
            into.errors += second.errors;
        }
    }
}

/// The measurements of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub offered_rps: f64,
    /// When the phase began, in seconds on the session clock (the timeline's x axis).
    pub started_s: f64,
    pub start_rps: f64,
    pub end_rps: f64,
    pub duration_s: f64,
    pub events_per_request: usize,
    pub offered_events_per_sec: f64,
    /// Requests due in the phase.
    pub scheduled: u64,
    /// Found the queue full, never sent.
    pub dropped: u64,
    /// Still queued when the run gave up waiting (server stuck), never sent.
    pub abandoned: u64,
    /// Put on the queue more than the late threshold after their intended time: the load
    /// generator itself could not keep up.
    pub generator_lag: u64,
    /// Sent more than the late threshold after their intended time (waited for a connection).
    pub late: u64,
    pub completed: u64,
    pub ok_requests: u64,
    pub ok_events: u64,
    pub achieved_rps: f64,
    pub achieved_events_per_sec: f64,
    /// Failed, dropped and abandoned requests over scheduled ones.
    pub error_rate: f64,
    pub statuses: std::collections::BTreeMap<String, u64>,
    /// From the intended send time (coordinated-omission corrected).
    pub latency: Percentiles,
    /// From the actual send (what a closed-loop tool would report).
    pub service_time: Percentiles,
    /// Cores the load generator process used.
    pub loadgen_cpu_cores: Option<f64>,
    /// Cores the server process used (when the harness started it as a process).
    pub server_cpu_cores: Option<f64>,
}

impl PhaseResult {
    /// The server's CPU per unit of `rate` (requests or events per second), in µs, when its
    /// CPU was measured and both are above zero.
    pub fn server_cpu_micros(&self, rate: f64) -> Option<f64> {
        self.server_cpu_cores.filter(|cores| *cores > 0.0 && rate > 0.0).map(|cores| cores * 1e6 / rate)
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub phases: Vec<PhaseResult>,
}

/// Opens a pool on `target` and runs `phases` through it.
pub async fn run(
    target: &Target,
    phases: &[Phase],
    options: &RunOptions,
    session: &Session,
    matcher: Option<Arc<Matcher>>,
    label: &str,
) -> anyhow::Result<RunOutcome> {
    let pool = Pool::open(target, options, session).await;
    run_on(&pool, phases, session, matcher, label).await
}

/// Runs `phases` through `pool`, whose connections stay open for the next run.
pub async fn run_on(
    pool: &Pool,
    phases: &[Phase],
    session: &Session,
    matcher: Option<Arc<Matcher>>,
    label: &str,
) -> anyhow::Result<RunOutcome> {
    let state = Arc::new(RunState::new(phases.len(), matcher));
    let total: u64 = phases.iter().map(Phase::requests).sum();
    let bar = session.progress.show(label, total, state.live.clone());
    let (dispatched, scheduled_seconds) = pool.dispatch(phases, &state, session.clock).await?;

    // Whatever is still queued gets a bounded time to finish; past it, the rest is abandoned
    // and only requests already in flight are waited for (each bounded by its timeout).
    let deadline = tokio::time::Instant::now() + pool.options.request_timeout + Duration::from_secs(2);
    while state.outstanding.load(Ordering::Acquire) > 0 {
        if tokio::time::timeout_at(deadline, state.all_done.notified()).await.is_err() {
            state.abandon.store(true, Ordering::Relaxed);
            while state.outstanding.load(Ordering::Acquire) > 0 {
                let _ = tokio::time::timeout(Duration::from_millis(100), state.all_done.notified()).await;
            }
        }
    }
    drop(bar);

    let mut recorder = state.recorder.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
    for (second, count) in scheduled_seconds.into_iter().enumerate() {
        recorder.second(second as f64).scheduled += count;
    }
    let abandoned = state.abandoned.lock().map(|a| a.clone()).unwrap_or_default();
    let events_per_request = pool.options.mode.events_per_request();
    let results = phases
        .iter()
        .zip(&recorder.phases)
        .zip(dispatched)
        .zip(abandoned)
        .map(|(((phase, stats), dispatched), abandoned)| {
            summarize(phase, stats, &dispatched, abandoned, events_per_request, session.clock)
        })
        .collect();
    session.merge_seconds(std::mem::take(&mut recorder.seconds));
    Ok(RunOutcome { phases: results })
}

pub(crate) fn summarize(
    phase: &Phase,
    stats: &PhaseStats,
    dispatched: &Dispatched,
    abandoned: u64,
    events_per_request: usize,
    clock: Clock,
) -> PhaseResult {
    let duration = phase.duration.as_secs_f64();
    let started_s = dispatched.start.map_or(0.0, |s| clock.seconds(s));
    // Throughput over the time the phase's requests really took: a server that falls behind
    // finishes late, and its rate comes out below the offered one.
    let elapsed = (stats.last_completion_s - started_s).max(duration).max(1e-9);
    let failed = stats.completed - stats.ok_requests;
    let error_rate = if dispatched.scheduled == 0 {
        0.0
    } else {
        (failed + dispatched.dropped + abandoned) as f64 / dispatched.scheduled as f64
    };
    let (loadgen_cpu_cores, server_cpu_cores) = dispatched.cpu_start.cores_until(&dispatched.cpu_end, duration);
    PhaseResult {
        offered_rps: phase.offered_rate(),
        started_s,
        start_rps: phase.start_rate,
        end_rps: phase.end_rate,
        duration_s: duration,
        events_per_request,
        offered_events_per_sec: phase.offered_rate() * events_per_request as f64,
        scheduled: dispatched.scheduled,
        dropped: dispatched.dropped,
        abandoned,
        generator_lag: dispatched.generator_lag,
        late: stats.late,
        completed: stats.completed,
        ok_requests: stats.ok_requests,
        ok_events: stats.ok_events,
        achieved_rps: stats.ok_requests as f64 / elapsed,
        achieved_events_per_sec: stats.ok_events as f64 / elapsed,
        error_rate,
        statuses: stats.statuses.clone(),
        latency: Percentiles::of(&stats.latency),
        service_time: Percentiles::of(&stats.service),
        loadgen_cpu_cores,
        server_cpu_cores,
    }
}
