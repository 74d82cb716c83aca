//! The `clickstream loadtest` commands: a run (profile or max-rate search) and
//! `bench-scheduler`, and what `compare` (in `compare.rs`) shares with them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::capacity::Capacity;
use crate::e2e::{E2eOptions, E2eResult, Matcher};
use crate::peak::PeakPool;
use crate::plan::{Phase, Profile};
use crate::pool::Pool;
use crate::progress::Progress;
use crate::report::{print_run, Report, TargetRun};
use crate::runner::{run, run_on, RunOptions, Session};
use crate::search::{find_max, FindMax, SearchOptions};
use crate::servers::{self, ServerKind};
use crate::target::{Target, TargetKind, TargetSpec};

/// Options every command shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: TargetSpec,
    pub run: RunOptions,
    /// Where `report.json` and `report.html` go.
    pub report_dir: PathBuf,
    /// Read events back from Kafka, when set.
    pub e2e: Option<E2eOptions>,
    /// Events per second to plan capacity for.
    pub target_rate: Option<f64>,
    /// Share of the max rate each instance is planned to run at.
    pub utilization: f64,
    pub progress: Progress,
    /// The command line, for the report.
    pub command_line: String,
    /// Unrecorded load before measuring: connections, producer batches and caches warm up.
    pub warmup: Duration,
}

/// What load a run offers.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    Profile(Profile),
    FindMax(SearchOptions),
    /// Closed loop: every connection sends back to back for this long.
    Peak(Duration),
}

/// Goals for the ratios: the physical limit of one core as the per-event cost work sets it
/// (a minimal hyper server's request rate for single events, raw rdkafka's event rate to the
/// same broker for batches). Earlier runs in docs/performance.md printed older goals, 0.8 and
/// 0.7.
pub const SINGLE_EVENT_GOAL: f64 = 0.6;
pub const BATCH_GOAL: f64 = 0.8;

/// One run against the configured target.
pub async fn run_command(settings: &Settings, load: Load) -> anyhow::Result<Report> {
    let session = Session::new(settings.progress);
    let target = Target::start(&settings.target).await?;
    let mode = settings.run.mode;
    let label = format!("{} / {}", settings.target.kind.as_str(), settings.run.label());
    let mut report = Report::new("clickstream load test", settings.command_line.clone());
    let first_rate = match load {
        Load::Profile(profile) => profile.phases().first().map_or(1.0, |p| p.start_rate.max(p.end_rate)),
        Load::FindMax(search) => search.start_rate,
        Load::Peak(duration) => {
            let target_run = peak_target(settings, &target, &session, duration, label).await?;
            print_run(&target_run);
            report.runs.push(target_run);
            write_report(&report, settings)?;
            return Ok(report);
        }
    };
    let pool = Pool::open(&target, &settings.run, &session).await;
    warm_up(settings, &pool, &session, first_rate, &label).await?;
    let target_run = match load {
        Load::Profile(profile) => {
            let matcher = start_matcher(settings, &target, &session).await?;
            let outcome = run_on(&pool, &profile.phases(), &session, matcher.clone(), &label).await?;
            let e2e = finish_matcher(matcher).await;
            TargetRun {
                label,
                target: target.info.clone(),
                mode,
                connections: settings.run.connections,
                phases: outcome.phases,
                timeline: session.take_timeline(),
                find_max: None,
                e2e,
                capacity: None,
                peak: false,
            }
        }
        Load::FindMax(search) => search_target(settings, &target, &pool, &search, &session, label).await?,
        Load::Peak(_) => unreachable!("peak runs returned above"),
    };
    print_run(&target_run);
    report.runs.push(target_run);
    write_report(&report, settings)?;
    Ok(report)
}

/// Offers `rate` for the warm-up time and forgets the results: the first second against a
/// fresh server measures its connection setup, not its steady state.
pub(crate) async fn warm_up(
    settings: &Settings,
    pool: &Pool,
    session: &Session,
    rate: f64,
    label: &str,
) -> anyhow::Result<()> {
    if settings.warmup.is_zero() {
        return Ok(());
    }
    let label = format!("{label} warm-up");
    run_on(pool, &[Phase::fixed(rate.max(1.0), settings.warmup)], session, None, &label).await?;
    session.take_timeline();
    Ok(())
}

/// Searches the max rate of `target`, then, when end-to-end matching is on, holds that rate
/// once more while reading the events back.
pub(crate) async fn search_target(
    settings: &Settings,
    target: &Target,
    pool: &Pool,
    search: &SearchOptions,
    session: &Session,
    label: String,
) -> anyhow::Result<TargetRun> {
    eprintln!("searching the max rate of {label} at p99 <= {} ms", search.slo.p99_ms);
    let found: FindMax = find_max(pool, search, session, &label).await?;
    let mut phases: Vec<_> = found.probes.iter().map(|p| p.phase.clone()).collect();
    let mut e2e = None;
    if let Some(rate) = found.max_rps {
        if let Some(matcher) = start_matcher(settings, target, session).await? {
            eprintln!("holding {rate:.0} req/s for {:?} while reading the events back", search.probe);
            let confirm = format!("{label} end to end @ {rate:.0} req/s");
            let hold = [Phase::fixed(rate, search.probe)];
            let outcome = run_on(pool, &hold, session, Some(matcher.clone()), &confirm).await?;
            if let Some(phase) = outcome.phases.first() {
                // The consumer adds load on the broker; say whether the rate still held.
                let verdict = search.slo.judge(phase);
                let held = if verdict.passed { "held" } else { "did NOT hold" };
                eprintln!("  with the end-to-end consumer running, {rate:.0} req/s {held} ({})", verdict.reason);
            }
            phases.extend(outcome.phases);
            e2e = finish_matcher(Some(matcher)).await;
        }
    }
    let capacity = Capacity::from_search(
        target.info.kind.as_str(),
        &found,
        target.info.cores,
        settings.target_rate,
        settings.utilization,
    );
    Ok(TargetRun {
        label,
        target: target.info.clone(),
        mode: pool.options.mode,
        connections: pool.options.connections,
        phases,
        timeline: session.take_timeline(),
        find_max: Some(found),
        e2e,
        capacity,
        peak: false,
    })
}

/// A peak run on `target`: a closed-loop warm-up, then `duration` measured, with the events
/// read back when end-to-end matching is on.
pub(crate) async fn peak_target(
    settings: &Settings,
    target: &Target,
    session: &Session,
    duration: Duration,
    label: String,
) -> anyhow::Result<TargetRun> {
    let label = format!("{label} peak");
    let mut pool = PeakPool::open(target, &settings.run, session).await;
    if !settings.warmup.is_zero() {
        pool.run(settings.warmup, session, None, &format!("{label} warm-up")).await?;
        session.take_timeline();
    }
    let matcher = start_matcher(settings, target, session).await?;
    let phase = pool.run(duration, session, matcher.clone(), &label).await?;
    let e2e = finish_matcher(matcher).await;
    Ok(TargetRun {
        label,
        target: target.info.clone(),
        mode: settings.run.mode,
        connections: settings.run.connections,
        phases: vec![phase],
        timeline: session.take_timeline(),
        find_max: None,
        e2e,
        capacity: None,
        peak: true,
    })
}

pub(crate) async fn start_matcher(
    settings: &Settings,
    target: &Target,
    session: &Session,
) -> anyhow::Result<Option<Arc<Matcher>>> {
    match &settings.e2e {
        Some(options) if target.info.kafka.is_some() => {
            Ok(Some(Matcher::start(options, session.sequence.run, session.clock).await?))
        }
        Some(_) => {
            eprintln!("end-to-end matching skipped: {} writes nothing to Kafka", target.info.kind.as_str());
            Ok(None)
        }
        None => Ok(None),
    }
}

pub(crate) async fn finish_matcher(matcher: Option<Arc<Matcher>>) -> Option<E2eResult> {
    match matcher {
        Some(matcher) => Some(matcher.finish().await),
        None => None,
    }
}

pub(crate) fn write_report(report: &Report, settings: &Settings) -> anyhow::Result<()> {
    let (json, html) = report.write(&settings.report_dir)?;
    println!("\nreport: {} and {}", json.display(), html.display());
    Ok(())
}

/// `clickstream loadtest bench-scheduler`: the rate the scheduler achieves against an
/// in-process hyper baseline, beside the rate asked for.
pub async fn bench_scheduler(options: &RunOptions, rates: &[f64], each: Duration) -> anyhow::Result<()> {
    let server = servers::start(ServerKind::HyperBaseline, &Default::default(), "127.0.0.1:0").await?;
    let spec = TargetSpec {
        kind: TargetKind::HyperBaseline,
        url: Some(format!("http://{}", server.addr)),
        gateway: Default::default(),
        cpus: None,
        binary: None,
    };
    let target = Target::start(&spec).await?;
    let session = Session::new(Progress::HIDDEN);
    println!(
        "scheduler against an in-process hyper server, {} connections, {} for {each:?} per rate",
        options.connections,
        options.mode.label()
    );
    println!(
        "{:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "asked/s", "sent/s", "ok/s", "ratio", "gen lag", "late", "dropped", "p99 ms", "svc p99"
    );
    for &rate in rates {
        let outcome = run(&target, &[Phase::fixed(rate, each)], options, &session, None, "bench").await?;
        let Some(p) = outcome.phases.first() else { continue };
        println!(
            "{:>10.0} {:>10.0} {:>10.0} {:>8.3} {:>8} {:>8} {:>8} {:>9.2} {:>9.2}",
            rate,
            (p.scheduled - p.dropped) as f64 / p.duration_s,
            p.achieved_rps,
            p.achieved_rps / rate,
            p.generator_lag,
            p.late,
            p.dropped + p.abandoned,
            p.latency.p99_ms,
            p.service_time.p99_ms
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.shutdown().await;
    Ok(())
}
