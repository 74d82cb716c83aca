//! Peak mode: a closed loop. A fixed set of connections each sends its next request as soon as
//! the last one is answered, for a fixed time, so the figure is the most the target answers,
//! whatever its latency. Latency here is service time: a closed loop waits for the server and
//! cannot see queueing before the send (coordinated omission), so the open loop stays the tool
//! for latency SLOs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpu::CpuSample;
use crate::e2e::Matcher;
use crate::payload::source::RequestSource;
use crate::plan::Phase;
use crate::pool::Dispatched;
use crate::progress::Live;
use crate::runner::{summarize, PhaseResult, RunOptions, Session};
use crate::stats::{Completion, Recorder};
use crate::target::Target;
use crate::transport::{open_connections, Connection};

/// The connections of a peak run with their generators, kept open from the warm-up to the
/// measured stretch.
#[derive(Debug)]
pub struct PeakPool {
    senders: Vec<Sender>,
    server_pid: Option<u32>,
    pub(crate) options: RunOptions,
}

#[derive(Debug)]
struct Sender {
    connection: Connection,
    requests: RequestSource,
}

impl PeakPool {
    pub async fn open(target: &Target, options: &RunOptions, session: &Session) -> Self {
        let count = options.connections.max(1);
        let reads_bodies = target.info.kind.reads_bodies();
        let senders = open_connections(&target.endpoint, reads_bodies, options, &session.sequence, 0..count)
            .await
            .into_iter()
            .map(|(connection, requests)| Sender { connection, requests })
            .collect();
        Self { senders, server_pid: target.server_pid, options: options.clone() }
    }

    /// Every connection sends back to back for `duration`; what they measured, as one phase.
    pub async fn run(
        &mut self,
        duration: Duration,
        session: &Session,
        matcher: Option<Arc<Matcher>>,
        label: &str,
    ) -> anyhow::Result<PhaseResult> {
        let live = Arc::new(Live::default());
        let bar = session.progress.show(label, 0, live.clone());
        let start = Instant::now();
        let deadline = start + duration;
        let cpu_start = CpuSample::take(self.server_pid);
        let tasks: Vec<_> = std::mem::take(&mut self.senders)
            .into_iter()
            .map(|sender| {
                let shared = Shared {
                    live: live.clone(),
                    clock: session.clock,
                    options: self.options.clone(),
                    matcher: matcher.clone(),
                };
                tokio::spawn(sender.run_until(deadline, shared))
            })
            .collect();
        let mut recorder = Recorder::new(1);
        for task in futures::future::join_all(tasks).await {
            let (sender, own) = task?;
            self.senders.push(sender);
            merge(&mut recorder, own);
        }
        let cpu_end = CpuSample::take(self.server_pid);
        drop(bar);
        let sent = recorder.phases[0].completed;
        let dispatched =
            Dispatched { scheduled: sent, dropped: 0, generator_lag: 0, start: Some(start), cpu_start, cpu_end };
        // The offered rate of a closed loop is what it managed to send.
        let phase = Phase::fixed(sent as f64 / duration.as_secs_f64().max(1e-9), duration);
        let seconds = std::mem::take(&mut recorder.seconds);
        let result = summarize(
            &phase,
            &recorder.phases[0],
            &dispatched,
            0,
            self.options.mode.events_per_request(),
            session.clock,
        );
        session.merge_seconds(seconds);
        Ok(result)
    }
}

impl Sender {
    /// Each connection records on its own and the recorders are merged at the end, so the
    /// loop takes no lock per request.
    async fn run_until(mut self, deadline: Instant, shared: Shared) -> (Self, Recorder) {
        let Shared { live, clock, options, matcher } = shared;
        let mut recorder = Recorder::new(1);
        while Instant::now() < deadline {
            let request = self.requests.current();
            let started = Instant::now();
            request.stamp(clock.micros(started));
            Live::add(&live.scheduled, 1);
            if let Some(matcher) = &matcher {
                matcher.sent(request.event_count());
            }
            let outcome = self.connection.send(request, options.request_timeout).await;
            let done = Instant::now();
            if let (true, Some(matcher)) = (outcome.ok, &matcher) {
                matcher.acknowledge(request.first_seq, request.event_count());
            }
            Live::add(&live.completed, 1);
            Live::add(if outcome.ok { &live.ok } else { &live.errors }, 1);
            let completion = Completion {
                phase: 0,
                latency: done - started,
                service: done - started,
                late: false,
                status: outcome.status,
                ok: outcome.ok,
                events: request.event_count(),
                completed_at_s: clock.seconds(done),
            };
            recorder.record(&completion);
            recorder.second(clock.seconds(started)).scheduled += 1;
            self.requests.advance();
        }
        (self, recorder)
    }
}

/// What every connection of a run shares.
struct Shared {
    live: Arc<Live>,
    clock: crate::clock::Clock,
    options: RunOptions,
    matcher: Option<Arc<Matcher>>,
}

fn merge(into: &mut Recorder, from: Recorder) {
    for (to, phase) in into.phases.iter_mut().zip(from.phases) {
        let _ = to.latency.add(&phase.latency);
        let _ = to.service.add(&phase.service);
        for (status, count) in phase.statuses {
            *to.statuses.entry(status).or_default() += count;
        }
        to.completed += phase.completed;
        to.ok_requests += phase.ok_requests;
        to.ok_events += phase.ok_events;
        to.late += phase.late;
        to.last_completion_s = to.last_completion_s.max(phase.last_completion_s);
    }
    for (index, second) in from.seconds.into_iter().enumerate() {
        let to = into.second(index as f64);
        let _ = to.latency.add(&second.latency);
        to.scheduled += second.scheduled;
        to.ok_requests += second.ok_requests;
        to.ok_events += second.ok_events;
        to.errors += second.errors;
    }
}
