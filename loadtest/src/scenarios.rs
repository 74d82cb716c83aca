//! The `idle-connections` and `overload` commands: each starts its targets, runs its scenario
//! and writes the usual report with its own section.

use std::time::Duration;

use anyhow::Context as _;

use crate::command::{finish_matcher, start_matcher, warm_up, write_report, Settings};
use crate::idle::{self, IdleResult};
use crate::overload::{OverloadOptions, OverloadResult, SpoolWatch, CALM_SHARE, OVERLOAD_SHARE};
use crate::plan::Phase;
use crate::pool::Pool;
use crate::report::{print_run, Report, TargetRun};
use crate::runner::{run_on, Session};
use crate::search::{find_max, SearchOptions};
use crate::target::{Target, TargetKind, TargetSpec};
use crate::transport::Endpoint;

/// How often the spool gauge is read during the overload scenario.
const SPOOL_SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// How long an end-to-end overload run waits for the gateway's spool to replay before it
/// reads back what reached Kafka.
const SPOOL_REPLAY_LIMIT: Duration = Duration::from_secs(120);

/// Idle-connection memory of the target and, unless `baseline` is off, of hyper-baseline.
pub async fn idle_command(
    settings: &Settings,
    connections: usize,
    baseline: bool,
    settle: Duration,
) -> anyhow::Result<Report> {
    let mut report = Report::new("clickstream load test: idle-connection memory", settings.command_line.clone());
    let mut kinds = vec![settings.target.kind];
    if baseline && settings.target.kind != TargetKind::HyperBaseline {
        kinds.push(TargetKind::HyperBaseline);
    }
    println!("\n== idle connections: {connections} keep-alive HTTP/1.1 connections, one request each");
    for kind in kinds {
        let spec = TargetSpec { kind, ..settings.target.clone() };
        let result = idle::measure(&spec, &settings.run, connections, settle).await?;
        println!("   {}", idle::describe(&result));
        report.idle_connections.push(result);
    }
    if let Some(ratio) = idle_ratio(&report.idle_connections) {
        println!("   memory per idle connection, {} vs hyper-baseline: {ratio:.2}×", settings.target.kind.as_str());
    }
    write_report(&report, settings)?;
    Ok(report)
}

/// The first target's bytes per connection over hyper-baseline's.
pub fn idle_ratio(results: &[IdleResult]) -> Option<f64> {
    let subject = results.first().filter(|r| r.target != TargetKind::HyperBaseline)?;
    let baseline = results.iter().find(|r| r.target == TargetKind::HyperBaseline)?;
    (baseline.bytes_per_connection > 0.0).then(|| subject.bytes_per_connection / baseline.bytes_per_connection)
}

/// The overload scenario against the configured target, with the SLO search when no rate is
/// given.
pub async fn overload_command(
    settings: &Settings,
    options: &OverloadOptions,
    search: &SearchOptions,
) -> anyhow::Result<Report> {
    let session = Session::new(settings.progress);
    // Before the target starts, so a server started here inherits the limit too.
    if options.max_connections > settings.run.connections {
        idle::raise_fd_limit(options.max_connections as u64 + idle::FD_HEADROOM)
            .context("the overload scenario may open --max-connections connections (lower it to fit)")?;
    }
    let target = Target::start(&settings.target).await?;
    let mode = settings.run.mode;
    let label = format!("{} / {}", settings.target.kind.as_str(), mode.label());
    let mut report = Report::new("clickstream load test: overload and recovery", settings.command_line.clone());
    let pool = Pool::open(&target, &settings.run, &session).await;
    warm_up(settings, &pool, &session, options.rate.unwrap_or(search.start_rate) * CALM_SHARE, &label).await?;
    let (rate, source) = match options.rate {
        Some(rate) => (rate, "given"),
        None => {
            eprintln!("searching the sustainable rate R of {label} at p99 <= {} ms", search.slo.p99_ms);
            let found = find_max(&pool, search, &session, &label).await?;
            let rate = found.max_rps;
            let run = TargetRun {
                label: format!("{label} search for R"),
                target: target.info.clone(),
                mode,
                connections: settings.run.connections,
                phases: found.probes.iter().map(|p| p.phase.clone()).collect(),
                timeline: session.take_timeline(),
                find_max: Some(found),
                e2e: None,
                capacity: None,
                peak: false,
            };
            print_run(&run);
            report.runs.push(run);
            let rate =
                rate.ok_or_else(|| anyhow::anyhow!("no probed rate met the SLO, so there is no R to overload"))?;
            // The last probes may have overloaded the server; let it drain before the baseline.
            tokio::time::sleep(Duration::from_secs(2)).await;
            (rate, "searched")
        }
    };
    let phases = [
        Phase::fixed(rate * CALM_SHARE, options.baseline),
        Phase::fixed(rate * OVERLOAD_SHARE, options.overload),
        Phase::fixed(rate * CALM_SHARE, options.recovery),
    ];
    eprintln!(
        "overload scenario: {:.0} req/s for {:?}, {:.0} for {:?}, {:.0} for {:?}",
        phases[0].start_rate,
        options.baseline,
        phases[1].start_rate,
        options.overload,
        phases[2].start_rate,
        options.recovery
    );
    session.take_timeline();
    let matcher = start_matcher(settings, &target, &session).await?;
    let watch = match target.endpoint {
        Endpoint::Http { addr } => Some(SpoolWatch::start(addr, session.clock, SPOOL_SAMPLE_EVERY)),
        Endpoint::Kafka { .. } => None,
    };
    let label = format!("{label} overload");
    let connections_before = pool.connection_count();
    pool.grow_up_to(options.max_connections);
    let outcome = run_on(&pool, &phases, &session, matcher.clone(), &label).await?;
    let connections = (connections_before, pool.connection_count());
    let spool = match watch {
        Some(watch) => {
            if matcher.is_some() {
                let waiting = watch.wait_empty(SPOOL_REPLAY_LIMIT).await;
                if waiting > 0.0 {
                    eprintln!(
                        "the spool still holds {waiting:.0} events after {SPOOL_REPLAY_LIMIT:?}: the read-back below \
                         counts them as lost, though the gateway may yet deliver them"
                    );
                }
            }
            watch.finish().await
        }
        None => None,
    };
    let e2e = finish_matcher(matcher).await;
    let timeline = session.take_timeline();
    let result = OverloadResult::from_run(rate, source, &outcome.phases, &timeline, spool, connections)?;
    let run = TargetRun {
        label,
        target: target.info.clone(),
        mode,
        connections: settings.run.connections,
        phases: outcome.phases,
        timeline,
        find_max: None,
        e2e,
        capacity: None,
        peak: false,
    };
    print_run(&run);
    for line in result.describe() {
        println!("   {line}");
    }
    report.runs.push(run);
    report.overload = Some(result);
    write_report(&report, settings)?;
    Ok(report)
}
