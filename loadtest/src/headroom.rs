//! The latency goal where it is set: single events offered open loop at 70% of the rate a
//! closed-loop peak reached, and their p99 against the producer's `linger.ms` + 5 ms. A server
//! that only meets its SLO far below its peak has no headroom for a burst. raw-kafka, offered
//! the same rate, is the floor: what the producer and the broker alone take at that p99.
//! Beside it, the server's CPU per request in that open-loop run against its peak's: requests
//! that arrive one by one each pay for waking the server, which a closed loop mostly spares.

use std::time::Duration;

use crate::command::{warm_up, Settings};
use crate::plan::Phase;
use crate::pool::Pool;
use crate::report::TargetRun;
use crate::runner::{run_on, RunOptions, Session};
use crate::target::{Target, TargetKind, TargetSpec};

/// The share of the closed-loop peak the latency goal is measured at.
pub const PEAK_SHARE: f64 = 0.7;
/// What the goal allows above the producer's `linger.ms`, in milliseconds.
pub const LATENCY_ALLOWANCE_MS: f64 = 5.0;

/// The gateway open loop at [`PEAK_SHARE`] of its `peak`, then raw-kafka (the floor) at the
/// same rate. Both runs' labels start with `prefix` (a round's, say).
pub(crate) async fn run_with_floor(
    settings: &Settings,
    options: &RunOptions,
    gateway: &Target,
    session: &Session,
    peak: &TargetRun,
    prefix: &str,
    duration: Duration,
) -> anyhow::Result<(TargetRun, TargetRun)> {
    let rate = (peak.phases.first().map_or(0.0, |p| p.achieved_rps) * PEAK_SHARE).max(1.0);
    let (kind, mode) = (peak.target.kind.as_str(), options.mode.label());
    let label = format!("{prefix}{kind} / {mode} at {PEAK_SHARE}x its peak");
    let at_share = run_at_rate(settings, options, gateway, session, rate, label, duration).await?;
    let raw_kafka = TargetKind::RawKafka;
    let raw = Target::start(&TargetSpec { kind: raw_kafka, url: None, ..settings.target.clone() }).await?;
    let label = format!("{prefix}{} / {mode} at {PEAK_SHARE}x the {kind}'s peak", raw_kafka.as_str());
    let floor = run_at_rate(settings, options, &raw, session, rate, label, duration).await?;
    Ok((at_share, floor))
}

/// Offers `rate` to `target`, open loop, for `duration`, on fresh connections after the usual
/// warm-up.
async fn run_at_rate(
    settings: &Settings,
    options: &RunOptions,
    target: &Target,
    session: &Session,
    rate: f64,
    label: String,
    duration: Duration,
) -> anyhow::Result<TargetRun> {
    let pool = Pool::open(target, options, session).await;
    warm_up(settings, &pool, session, rate, &label).await?;
    let outcome = run_on(&pool, &[Phase::fixed(rate, duration)], session, None, &label).await?;
    Ok(TargetRun {
        label,
        target: target.info.clone(),
        mode: options.mode,
        connections: options.connections,
        phases: outcome.phases,
        timeline: session.take_timeline(),
        find_max: None,
        e2e: None,
        capacity: None,
        peak: false,
    })
}

/// The goal's line for a run at the share rate, beside the floor's p99 at the same rate;
/// nothing for a target without a producer.
pub(crate) fn goal_line(run: &TargetRun, floor: &TargetRun) -> Option<String> {
    let (phase, kafka) = (run.phases.first()?, run.target.kafka.as_ref()?);
    let goal = f64::from(kafka.linger_ms) + LATENCY_ALLOWANCE_MS;
    let verdict = if phase.latency.p99_ms <= goal { "met" } else { "not met" };
    let beside = floor.phases.first().map_or(String::new(), |f| {
        format!(
            "; {} at the same rate: {:.2} ms, so the {} adds {:+.2} ms",
            floor.target.kind.as_str(),
            f.latency.p99_ms,
            run.target.kind.as_str(),
            phase.latency.p99_ms - f.latency.p99_ms
        )
    });
    Some(format!(
        "p99 at {PEAK_SHARE}x the closed-loop peak ({:.0} req/s offered, {:.0} ok): {:.2} ms (goal <= linger.ms + 5 = {goal} ms: {verdict}){beside}",
        phase.offered_rps, phase.achieved_rps, phase.latency.p99_ms
    ))
}

/// The server's CPU per request open loop at the share rate against at the closed-loop peak,
/// and the share of a core the open-loop run took; nothing when either CPU was not measured.
pub(crate) fn cost_line(run: &TargetRun, peak: &TargetRun) -> Option<String> {
    let (open, closed) = (run.phases.first()?, peak.phases.first()?);
    let cores = open.server_cpu_cores?;
    let open_loop = open.server_cpu_micros(open.achieved_rps)?;
    let closed_loop = closed.server_cpu_micros(closed.achieved_rps)?;
    Some(format!(
        "server CPU per request open loop at {PEAK_SHARE}x: {open_loop:.1} µs ({cores:.2} of a core), \
         against {closed_loop:.1} µs at the closed-loop peak ({:.2}x)",
        open_loop / closed_loop
    ))
}
