//! The connection pool and the dispatcher. The pool's connections live as long as the pool,
//! so every probe of a search measures warm keep-alive connections; each takes jobs off one
//! shared queue. The dispatcher, a thread of its own, puts each job on the queue at its
//! intended time whatever the server is doing: an open loop. A pool may also be let grow,
//! opening connections while requests wait for one, as a site's many clients would.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::cpu::CpuSample;
use crate::e2e::Matcher;
use crate::payload::ids::Sequence;
use crate::payload::source::RequestSource;
use crate::plan::Phase;
use crate::progress::Live;
use crate::runner::{RunOptions, Session};
use crate::stats::{Completion, Recorder};
use crate::target::Target;
use crate::transport::{open_connections, Connection, Endpoint};

/// One request to send, and the run it belongs to.
#[derive(Debug)]
pub(crate) struct Job {
    pub phase: usize,
    pub intended: Instant,
    pub run: Arc<RunState>,
}

/// What the connections share during one run.
#[derive(Debug)]
pub(crate) struct RunState {
    pub recorder: Mutex<Recorder>,
    pub live: Arc<Live>,
    pub matcher: Option<Arc<Matcher>>,
    /// Set when the run gives up waiting: queued jobs are then counted, not sent.
    pub abandon: AtomicBool,
    pub abandoned: Mutex<Vec<u64>>,
    /// Jobs on the queue, not yet taken by a connection.
    pub queued: AtomicU64,
    /// Jobs on the queue or in flight.
    pub outstanding: AtomicU64,
    pub all_done: Notify,
}

impl RunState {
    pub fn new(phases: usize, matcher: Option<Arc<Matcher>>) -> Self {
        Self {
            recorder: Mutex::new(Recorder::new(phases)),
            live: Arc::new(Live::default()),
            matcher,
            abandon: AtomicBool::new(false),
            abandoned: Mutex::new(vec![0; phases]),
            queued: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            all_done: Notify::new(),
        }
    }

    fn finish_one(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.notify_one();
        }
    }
}

/// Keep-alive connections with their workers, for one target and one way of sending.
#[derive(Debug)]
pub struct Pool {
    jobs: Sender<Job>,
    connections: Arc<Connections>,
    grower: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(crate) server_pid: Option<u32>,
    pub(crate) options: RunOptions,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs.close();
        if let Some(grower) = self.grower.lock().unwrap_or_else(PoisonError::into_inner).take() {
            grower.abort();
        }
        for worker in self.connections.workers.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            worker.abort();
        }
    }
}

/// How often a growing pool looks for requests waiting on busy connections.
const GROW_EVERY: Duration = Duration::from_millis(5);
/// Most connections a growing pool opens at once.
const GROW_STEP: usize = 64;

impl Pool {
    /// Opens `options.connections` connections to `target`.
    pub async fn open(target: &Target, options: &RunOptions, session: &Session) -> Self {
        let (jobs, queue) = async_channel::unbounded::<Job>();
        let connections = Arc::new(Connections {
            endpoint: target.endpoint.clone(),
            reads_bodies: target.info.kind.reads_bodies(),
            sequence: session.sequence.clone(),
            clock: session.clock,
            options: options.clone(),
            queue,
            workers: Mutex::new(Vec::new()),
            idle: Arc::new(AtomicUsize::new(0)),
        });
        connections.open_more(options.connections.max(1)).await;
        Self { jobs, connections, grower: Mutex::new(None), server_pid: target.server_pid, options: options.clone() }
    }

    /// From now on, opens connections while requests wait for a free one, up to `max` in all,
    /// and keeps them. A site's visitors each connect on their own rather than queue behind
    /// each other's answers, so an overloaded server sees every request, as in production,
    /// and can answer it (or shed it) itself; a fixed pool would hold the excess in this
    /// process's queue instead, where the server cannot see it.
    pub fn grow_up_to(&self, max: usize) {
        let connections = self.connections.clone();
        let grower = tokio::spawn(async move {
            let mut tick = tokio::time::interval(GROW_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let open = connections.count();
                if open >= max {
                    return;
                }
                let waiting = connections.waiting_for_a_connection();
                if waiting > 0 {
                    connections.open_more(waiting.min(max - open).min(GROW_STEP)).await;
                }
            }
        });
        if let Some(earlier) = self.grower.lock().unwrap_or_else(PoisonError::into_inner).replace(grower) {
            earlier.abort();
        }
    }

    /// Connections open now: `options.connections`, plus any a growing pool opened.
    pub fn connection_count(&self) -> usize {
        self.connections.count()
    }

    /// Dispatches `phases` on a thread of its own and returns what it counted, per phase, and
    /// the requests due in each second of the session clock.
    pub(crate) async fn dispatch(
        &self,
        phases: &[Phase],
        run: &Arc<RunState>,
        clock: Clock,
    ) -> anyhow::Result<(Vec<Dispatched>, Vec<u64>)> {
        let peak = phases.iter().map(|p| p.start_rate.max(p.end_rate)).fold(1.0, f64::max);
        let dispatcher = Dispatcher {
            phases: phases.to_vec(),
            start: Instant::now() + Duration::from_millis(20),
            jobs: self.jobs.clone(),
            run: run.clone(),
            clock,
            late: self.options.late_threshold,
            capacity: ((peak * self.options.max_backlog.as_secs_f64()) as u64).max(1024),
            server_pid: self.server_pid,
        };
        let thread = std::thread::Builder::new().name("loadtest-dispatch".into()).spawn(move || dispatcher.run())?;
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the dispatcher panicked"))
    }
}

/// What the dispatcher counted in one phase.
#[derive(Debug, Default, Clone)]
pub(crate) struct Dispatched {
    pub scheduled: u64,
    pub dropped: u64,
    pub generator_lag: u64,
    pub start: Option<Instant>,
    pub cpu_start: CpuSample,
    pub cpu_end: CpuSample,
}

struct Dispatcher {
    phases: Vec<Phase>,
    start: Instant,
    jobs: Sender<Job>,
    run: Arc<RunState>,
    clock: Clock,
    late: Duration,
    /// Most jobs that may wait on the queue; more are dropped.
    capacity: u64,
    server_pid: Option<u32>,
}

/// Gaps shorter than this are not worth a wake-up.
const MIN_SLEEP: Duration = Duration::from_micros(50);
/// The shortest sleep of the dispatcher.
const WAKE_QUANTUM: Duration = Duration::from_micros(200);

impl Dispatcher {
    /// Sleeps with the OS timer (tens of microseconds of slack) rather than tokio's, which
    /// wakes on whole milliseconds and would send every request up to a millisecond late.
    fn run(self) -> (Vec<Dispatched>, Vec<u64>) {
        let mut out = vec![Dispatched::default(); self.phases.len()];
        let mut per_second: Vec<u64> = Vec::new();
        let mut phase_start = self.start;
        let live = &self.run.live;
        for (index, phase) in self.phases.iter().enumerate() {
            let counts = &mut out[index];
            sleep_until(phase_start);
            counts.start = Some(phase_start);
            counts.cpu_start = CpuSample::take(self.server_pid);
            for i in 0..phase.requests() {
                let intended = phase_start + phase.due(i);
                let now = Instant::now();
                if intended > now + MIN_SLEEP {
                    // Each wake-up costs a context switch here and an unpark of the runtime;
                    // at high rates, waking at most once per quantum and handing out every
                    // request due by then halves the generator's cost per request. Those
                    // requests go out up to a quantum late, which their latency includes.
                    sleep_until(intended.max(now + WAKE_QUANTUM));
                } else if now > intended + self.late {
                    counts.generator_lag += 1;
                }
                let second = self.clock.seconds(intended) as usize;
                if per_second.len() <= second {
                    per_second.resize(second + 1, 0);
                }
                per_second[second] += 1;
                counts.scheduled += 1;
                Live::add(&live.scheduled, 1);
                if self.run.queued.load(Ordering::Acquire) >= self.capacity {
                    counts.dropped += 1;
                    Live::add(&live.dropped, 1);
                    continue;
                }
                self.run.queued.fetch_add(1, Ordering::AcqRel);
                self.run.outstanding.fetch_add(1, Ordering::AcqRel);
                if self.jobs.try_send(Job { phase: index, intended, run: self.run.clone() }).is_err() {
                    self.run.queued.fetch_sub(1, Ordering::AcqRel);
                    self.run.finish_one();
                    counts.dropped += 1;
                    Live::add(&live.dropped, 1);
                }
            }
            phase_start += phase.duration;
            sleep_until(phase_start);
            out[index].cpu_end = CpuSample::take(self.server_pid);
        }
        (out, per_second)
    }
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// What opening one more connection takes, and the workers of those open.
#[derive(Debug)]
struct Connections {
    endpoint: Endpoint,
    reads_bodies: bool,
    sequence: Sequence,
    clock: Clock,
    options: RunOptions,
    queue: Receiver<Job>,
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Workers waiting for a job: a queued job that one of them is about to take is not
    /// waiting for a connection.
    idle: Arc<AtomicUsize>,
}

impl Connections {
    fn count(&self) -> usize {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Jobs on the queue beyond what the idle workers are about to take.
    fn waiting_for_a_connection(&self) -> usize {
        self.queue.len().saturating_sub(self.idle.load(Ordering::Acquire))
    }

    /// Opens `more` connections, each with a worker on the shared queue.
    async fn open_more(&self, more: usize) {
        let first = self.count();
        let opened =
            open_connections(&self.endpoint, self.reads_bodies, &self.options, &self.sequence, first..first + more)
                .await;
        let started: Vec<tokio::task::JoinHandle<()>> = opened
            .into_iter()
            .map(|(connection, requests)| {
                let worker = Worker {
                    connection,
                    requests,
                    queue: self.queue.clone(),
                    idle: self.idle.clone(),
                    clock: self.clock,
                    options: self.options.clone(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        if self.queue.is_closed() {
            // The pool was dropped while these connected; its drop did not see them.
            started.iter().for_each(tokio::task::JoinHandle::abort);
        }
        workers.extend(started);
    }
}

/// One connection's loop: take a job, stamp the request made while waiting, send, record.
struct Worker {
    connection: Connection,
    requests: RequestSource,
    queue: Receiver<Job>,
    idle: Arc<AtomicUsize>,
    clock: Clock,
    options: RunOptions,
}

impl Worker {
    async fn run(mut self) {
        loop {
            self.idle.fetch_add(1, Ordering::AcqRel);
            let received = self.queue.recv().await;
            self.idle.fetch_sub(1, Ordering::AcqRel);
            let Ok(job) = received else { return };
            let run = job.run.clone();
            run.queued.fetch_sub(1, Ordering::AcqRel);
            if run.abandon.load(Ordering::Relaxed) {
                if let Ok(mut abandoned) = run.abandoned.lock() {
                    abandoned[job.phase] += 1;
                }
                run.finish_one();
                continue;
            }
            let request = self.requests.current();
            request.stamp(self.clock.micros(job.intended));
            let started = Instant::now();
            let late = started.saturating_duration_since(job.intended) > self.options.late_threshold;
            if let Some(matcher) = &run.matcher {
                matcher.sent(request.event_count());
            }
            let outcome = self.connection.send(request, self.options.request_timeout).await;
            let done = Instant::now();
            if outcome.ok {
                if let Some(matcher) = &run.matcher {
                    matcher.acknowledge(request.first_seq, request.event_count());
                }
            }
            let live = &run.live;
            Live::add(&live.completed, 1);
            Live::add(if outcome.ok { &live.ok } else { &live.errors }, 1);
            Live::add(&live.late, u64::from(late));
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
            if let Ok(mut recorder) = run.recorder.lock() {
                recorder.record(&completion);
            }
            run.finish_one();
            self.requests.advance();
        }
    }
}
