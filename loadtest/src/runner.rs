//! The open-loop run: a dispatcher thread puts each request on a queue at its intended time,
//! whatever the server is doing, and a pool of connections takes them off. Latency counts
//! from the intended time, so a stalled server shows up in the percentiles instead of
//! quietly slowing the load (wrk2's correction for coordinated omission). A request that
//! waits for a free connection longer than the late threshold is counted late; one that
//! finds the queue full (a backlog of `max_backlog`) is counted dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;

use crate::clock::Clock;
use crate::cpu::CpuSample;
use crate::e2e::Matcher;
use crate::payload::catalog::Catalog;
use crate::payload::ids::Sequence;
use crate::payload::{Generator, Mode};
use crate::plan::Phase;
use crate::progress::{Live, Progress};
use crate::stats::{Completion, PhaseStats, Percentiles, Recorder, Second};
use crate::target::Target;
use crate::transport::Connection;

/// How requests are made and sent, whatever the rate.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
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

    fn merge_seconds(&self, from: Vec<Second>) {
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

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub phases: Vec<PhaseResult>,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    phase: usize,
    intended: Instant,
}

/// What the dispatcher counted per phase.
#[derive(Debug, Default, Clone)]
struct Dispatched {
    scheduled: u64,
    dropped: u64,
    generator_lag: u64,
    start: Option<Instant>,
    cpu_start: CpuSample,
    cpu_end: CpuSample,
}

/// Runs `phases` against `target`.
pub async fn run(
    target: &Target,
    phases: &[Phase],
    options: &RunOptions,
    session: &Session,
    matcher: Option<Arc<Matcher>>,
    label: &str,
) -> anyhow::Result<RunOutcome> {
    let peak = phases.iter().map(|p| p.start_rate.max(p.end_rate)).fold(1.0, f64::max);
    let capacity = ((peak * options.max_backlog.as_secs_f64()) as usize).max(1024);
    let (jobs, queue) = async_channel::bounded::<Job>(capacity);
    let recorder = Arc::new(Mutex::new(Recorder::new(phases.len())));
    let live = Arc::new(Live::default());
    let abandon = Arc::new(AtomicBool::new(false));
    let abandoned = Arc::new(Mutex::new(vec![0u64; phases.len()]));

    let connections =
        futures::future::join_all((0..options.connections.max(1)).map(|_| Connection::open(&target.endpoint))).await;
    let per_connection = (options.visitors / connections.len()).max(1);
    let mut workers = Vec::with_capacity(connections.len());
    for (index, connection) in connections.into_iter().enumerate() {
        let generator = Generator::new(
            options.catalog.clone(),
            per_connection,
            options.seed.wrapping_add(index as u64 * 7919),
            session.sequence.clone(),
            &options.write_key,
            options.mode,
        );
        let worker = Worker {
            connection,
            generator,
            queue: queue.clone(),
            recorder: recorder.clone(),
            live: live.clone(),
            matcher: matcher.clone(),
            abandon: abandon.clone(),
            abandoned: abandoned.clone(),
            clock: session.clock,
            options: options.clone(),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    drop(queue);

    let total: u64 = phases.iter().map(Phase::requests).sum();
    let _bar = session.progress.show(label, total, live.clone());
    let start = Instant::now() + Duration::from_millis(20);
    let dispatcher = {
        let phases = phases.to_vec();
        let (live, clock, late, pid) = (live.clone(), session.clock, options.late_threshold, target.server_pid);
        std::thread::spawn(move || dispatch(&phases, start, &jobs, &live, clock, late, pid))
    };
    let (dispatched, scheduled_seconds) =
        tokio::task::spawn_blocking(move || dispatcher.join()).await?.map_err(|_| anyhow::anyhow!("dispatcher panicked"))?;

    // Whatever is still queued gets a bounded time to finish; past it, the rest is abandoned.
    let drain_deadline = tokio::time::Instant::now() + options.request_timeout + Duration::from_secs(2);
    let all_done = futures::future::join_all(workers);
    tokio::pin!(all_done);
    if tokio::time::timeout_at(drain_deadline, &mut all_done).await.is_err() {
        abandon.store(true, Ordering::Relaxed);
        all_done.await;
    }

    let mut recorder = Arc::try_unwrap(recorder)
        .map_err(|_| anyhow::anyhow!("workers still hold the recorder"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked while recording"))?;
    for (second, count) in scheduled_seconds.into_iter().enumerate() {
        recorder.second(second as f64).scheduled += count;
    }
    let abandoned = abandoned.lock().map(|a| a.clone()).unwrap_or_default();
    let results = phases
        .iter()
        .zip(&recorder.phases)
        .zip(dispatched)
        .zip(abandoned)
        .map(|(((phase, stats), dispatched), abandoned)| {
            summarize(phase, stats, &dispatched, abandoned, options.mode.events_per_request(), session.clock)
        })
        .collect();
    session.merge_seconds(std::mem::take(&mut recorder.seconds));
    Ok(RunOutcome { phases: results })
}

/// The dispatcher: enqueues each request at its intended time, never waiting on the server.
fn dispatch(
    phases: &[Phase],
    start: Instant,
    jobs: &Sender<Job>,
    live: &Live,
    clock: Clock,
    late: Duration,
    server_pid: Option<u32>,
) -> (Vec<Dispatched>, Vec<u64>) {
    let mut out = vec![Dispatched::default(); phases.len()];
    let mut per_second: Vec<u64> = Vec::new();
    let mut phase_start = start;
    for (index, phase) in phases.iter().enumerate() {
        let counts = &mut out[index];
        sleep_until(phase_start);
        counts.start = Some(phase_start);
        counts.cpu_start = CpuSample::take(server_pid);
        for i in 0..phase.requests() {
            let intended = phase_start + phase.due(i);
            let now = Instant::now();
            if intended > now {
                sleep_until(intended);
            } else if now - intended > late {
                counts.generator_lag += 1;
            }
            let second = clock.seconds(intended) as usize;
            if per_second.len() <= second {
                per_second.resize(second + 1, 0);
            }
            per_second[second] += 1;
            counts.scheduled += 1;
            Live::add(&live.scheduled, 1);
            match jobs.try_send(Job { phase: index, intended }) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                    counts.dropped += 1;
                    Live::add(&live.dropped, 1);
                }
            }
        }
        phase_start += phase.duration;
        sleep_until(phase_start);
        out[index].cpu_end = CpuSample::take(server_pid);
    }
    (out, per_second)
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

fn summarize(
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

/// One connection's loop: take a job, stamp the request made while waiting, send, record.
struct Worker {
    connection: Connection,
    generator: Generator,
    queue: Receiver<Job>,
    recorder: Arc<Mutex<Recorder>>,
    live: Arc<Live>,
    matcher: Option<Arc<Matcher>>,
    abandon: Arc<AtomicBool>,
    abandoned: Arc<Mutex<Vec<u64>>>,
    clock: Clock,
    options: RunOptions,
}

impl Worker {
    async fn run(mut self) {
        let mut next = Some(self.generator.next_request());
        while let Ok(job) = self.queue.recv().await {
            if self.abandon.load(Ordering::Relaxed) {
                if let Ok(mut abandoned) = self.abandoned.lock() {
                    abandoned[job.phase] += 1;
                }
                continue;
            }
            let mut request = next.take().unwrap_or_else(|| self.generator.next_request());
            request.stamp(self.clock.micros(job.intended));
            let started = Instant::now();
            let late = started.saturating_duration_since(job.intended) > self.options.late_threshold;
            if let Some(matcher) = &self.matcher {
                matcher.sent(request.event_count());
            }
            let outcome = self.connection.send(&request, self.options.request_timeout).await;
            let done = Instant::now();
            if outcome.ok {
                if let Some(matcher) = &self.matcher {
                    matcher.acknowledge(request.first_seq, request.event_count());
                }
            }
            Live::add(&self.live.completed, 1);
            Live::add(if outcome.ok { &self.live.ok } else { &self.live.errors }, 1);
            Live::add(&self.live.late, u64::from(late));
            let completion = Completion {
                phase: job.phase,
                latency: done.saturating_duration_since(job.intended),
                service: done - started,
                late,
                status: outcome.status,
                ok: outcome.ok,
                events: request.event_count(),
                completed_at_s: self.clock.seconds(done),
            };
            if let Ok(mut recorder) = self.recorder.lock() {
                recorder.record(&completion);
            }
            next = Some(self.generator.next_request());
        }
    }
}
