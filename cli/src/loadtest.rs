//! `clickstream loadtest`: turns the command-line flags into the load-test crate's settings
//! and runs the chosen command.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::GatewayConfig;
use clickstream_loadtest::{
    bench_scheduler, compare_command, idle_command, overload_command, run_command, Catalog, CompareOptions, E2eOptions,
    Load, Mode, OverloadOptions, Profile, Progress, Protocol, RunOptions, SearchOptions, Settings, Slo, TargetSpec,
};

use crate::args::{
    BenchEnricherArgs, BenchSchedulerArgs, LoadCommonArgs, LoadRunArgs, LoadtestArgs, LoadtestCommand, ServeArgs,
};

pub async fn run(args: &LoadtestArgs) -> anyhow::Result<()> {
    match &args.command {
        None => run_profile(&args.run).await,
        Some(LoadtestCommand::Run(run)) => run_profile(run).await,
        Some(LoadtestCommand::Compare(compare)) => {
            let mut settings = settings(&compare.common, clickstream_loadtest::TargetKind::Gateway, Mode::Single)?;
            if compare.peak && !compare.peak_keep_shedding {
                println!("peak runs: the gateway's CPU shedding is off (rate_limit.shed_lag_ms=0; --peak-keep-shedding keeps it)");
                settings.target.gateway.rate_limit.shed_lag_ms = 0;
            }
            let search = search_options(&compare.common);
            let batch_search = SearchOptions {
                start_rate: compare.batch_start_rate,
                slo: Slo { p99_ms: compare.batch_slo_p99, ..search.slo },
                ..search
            };
            let options = CompareOptions {
                search,
                batch: compare.batch,
                batch_search,
                peak: compare.peak.then(|| Duration::from_secs_f64(compare.peak_secs.max(0.001))),
                rounds: compare.rounds as usize,
            };
            compare_command(&settings, &options).await.map(drop)
        }
        Some(LoadtestCommand::IdleConnections(idle)) => {
            let settings = settings(&idle.common, idle.target, Mode::Single)?;
            let settle = Duration::from_secs_f64(idle.settle_secs.max(0.0));
            idle_command(&settings, idle.common.connections, !idle.no_baseline, settle).await.map(drop)
        }
        Some(LoadtestCommand::Overload(overload)) => {
            let mut settings = settings(&overload.common, overload.load.target, overload.load.mode())?;
            settings.run.protocol = overload.load.protocol()?;
            let secs = |s: f64| Duration::from_secs_f64(s.max(0.001));
            let options = OverloadOptions {
                rate: overload.rate,
                baseline: secs(overload.baseline_secs),
                overload: secs(overload.overload_secs),
                recovery: secs(overload.recovery_secs),
                max_connections: overload.max_connections,
            };
            overload_command(&settings, &options, &search_options(&overload.common)).await.map(drop)
        }
        Some(LoadtestCommand::BenchScheduler(bench)) => bench_command(bench).await,
        Some(LoadtestCommand::BenchEnricher(bench)) => bench_enricher(bench).await,
        Some(LoadtestCommand::Serve(serve)) => serve_command(serve).await,
    }
}

async fn run_profile(args: &LoadRunArgs) -> anyhow::Result<()> {
    let mut settings = settings(&args.common, args.load.target, args.load.mode())?;
    settings.run.protocol = args.load.protocol()?;
    let secs = Duration::from_secs_f64(args.duration.max(0.001));
    let load = if args.peak {
        Load::Peak(secs)
    } else if args.find_max {
        Load::FindMax(search_options(&args.common))
    } else {
        Load::Profile(match args.profile.as_str() {
            "fixed" => Profile::Fixed { rate: args.rate, duration: secs },
            "step" => Profile::Step { start: args.rate, step: args.step_rate, steps: args.steps, every: secs },
            "ramp" => Profile::Ramp { from: args.rate, to: args.ramp_to, duration: secs },
            other => anyhow::bail!("unknown --profile {other:?}: use fixed, step or ramp"),
        })
    };
    run_command(&settings, load).await.map(drop)
}

fn settings(args: &LoadCommonArgs, kind: clickstream_loadtest::TargetKind, mode: Mode) -> anyhow::Result<Settings> {
    let mut gateway: GatewayConfig = args.config.load()?;
    if let Some(key) = &args.write_key {
        gateway.sources.insert(
            0,
            SourceConfig { name: "loadtest".into(), write_key: key.clone(), allowed_origins: vec!["*".into()] },
        );
    }
    let target = TargetSpec {
        kind,
        url: args.url.clone(),
        cpus: Some(args.gateway_cpus.clone()).filter(|c| c != "none" && !c.is_empty()),
        binary: Some(std::env::current_exe().context("finding the clickstream binary")?),
        gateway: gateway.clone(),
    };
    let catalog = match &args.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::builtin(),
    };
    let run = RunOptions {
        mode,
        protocol: Protocol::Segment,
        connections: args.connections,
        request_timeout: Duration::from_millis(args.timeout_ms),
        late_threshold: Duration::from_secs_f64(args.late_ms / 1000.0),
        max_backlog: Duration::from_secs_f64(args.max_backlog_secs),
        visitors: args.visitors,
        seed: args.seed,
        catalog: Arc::new(catalog),
        write_key: target.write_key(),
    };
    let e2e = args.e2e.then(|| E2eOptions {
        kafka: gateway.kafka.clone(),
        raw_topic: gateway.topics.raw.clone(),
        enriched_topic: Some(args.enriched_topic.clone()).filter(|t| !t.is_empty()),
        drain: Duration::from_secs_f64(args.e2e_drain_secs),
    });
    Ok(Settings {
        target,
        run,
        report_dir: args.report_dir.clone(),
        e2e,
        target_rate: args.target_rate,
        utilization: args.utilization,
        progress: Progress { enabled: !args.no_progress },
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        warmup: Duration::from_secs_f64(args.warmup_secs),
    })
}

fn search_options(args: &LoadCommonArgs) -> SearchOptions {
    SearchOptions {
        slo: Slo { p99_ms: args.slo_p99, max_error_rate: args.max_error_rate },
        start_rate: args.start_rate,
        max_rate: args.max_rate,
        growth: args.growth.max(1.1),
        probe: Duration::from_secs_f64(args.probe_secs),
        cooldown: Duration::from_secs(1),
        precision: args.precision,
        max_probes: args.max_probes,
        retry_failures: !args.no_retry,
    }
}

async fn bench_command(args: &BenchSchedulerArgs) -> anyhow::Result<()> {
    let options = RunOptions {
        mode: Mode::Single,
        protocol: Protocol::Segment,
        connections: args.connections,
        request_timeout: Duration::from_secs(10),
        late_threshold: Duration::from_millis(1),
        max_backlog: Duration::from_secs(2),
        visitors: 10_000,
        seed: 1,
        catalog: Arc::new(Catalog::builtin()),
        write_key: clickstream_loadtest::target::DEFAULT_WRITE_KEY.to_owned(),
    };
    bench_scheduler(&options, &args.rates, Duration::from_secs_f64(args.secs)).await
}

async fn serve_command(args: &ServeArgs) -> anyhow::Result<()> {
    crate::commands::without_transparent_huge_pages();
    let config: GatewayConfig = clickstream_platform::config::load(args.config.as_deref(), std::env::vars(), &[])?;
    clickstream_loadtest::servers::serve_until(args.kind, &config, &args.listen, crate::commands::shutdown_signal())
        .await
}

async fn bench_enricher(args: &BenchEnricherArgs) -> anyhow::Result<()> {
    let mut config: clickstream_enricher::EnricherConfig = args.config.load_as()?;
    if let Some(threads) = args.threads {
        config.enricher.threads = threads;
    }
    let options = clickstream_loadtest::enricher_bench::EnricherBenchOptions {
        config,
        events: args.events,
        partitions: args.partitions,
        rounds: args.rounds,
        visitors: args.visitors,
        seed: args.seed,
        phase_timeout: Duration::from_secs(args.phase_timeout_secs),
    };
    clickstream_loadtest::enricher_bench::run(&options).await.map(drop)
}
