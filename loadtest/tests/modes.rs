//! The peak and overload modes on small runs: they count every request they send and report
//! the structure they promise. Nothing here asserts a speed.

use std::sync::Arc;
use std::time::Duration;

use clickstream_loadtest::{
    overload_command, Catalog, E2eOptions, Mode, OverloadOptions, PeakPool, Progress, Protocol, RunOptions,
    SearchOptions, Session, Settings, Slo, Target, TargetKind, TargetSpec,
};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};

fn options(mode: Mode, write_key: &str) -> RunOptions {
    RunOptions {
        mode,
        protocol: Protocol::Segment,
        connections: 4,
        request_timeout: Duration::from_secs(5),
        late_threshold: Duration::from_millis(5),
        max_backlog: Duration::from_secs(5),
        visitors: 100,
        seed: 5,
        catalog: Arc::new(Catalog::builtin()),
        write_key: write_key.into(),
    }
}

fn in_process(kind: TargetKind) -> TargetSpec {
    TargetSpec { kind, url: None, gateway: Default::default(), cpus: None, binary: None }
}

fn settings(target: TargetSpec, run: RunOptions, e2e: Option<E2eOptions>) -> Settings {
    Settings {
        target,
        run,
        report_dir: std::env::temp_dir().join(unique("clickstream-loadtest-report")),
        e2e,
        target_rate: None,
        utilization: 0.7,
        progress: Progress::HIDDEN,
        command_line: "test".into(),
        warmup: Duration::ZERO,
    }
}

fn search() -> SearchOptions {
    SearchOptions {
        slo: Slo { p99_ms: 100.0, max_error_rate: 0.01 },
        start_rate: 50.0,
        max_rate: 200.0,
        growth: 2.0,
        probe: Duration::from_millis(500),
        cooldown: Duration::from_millis(100),
        precision: 0.5,
        max_probes: 4,
        retry_failures: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peak_run_counts_every_response() {
    let target = Target::start(&in_process(TargetKind::HyperBaseline)).await.expect("in-process baseline");
    let session = Session::new(Progress::HIDDEN);
    let mut pool = PeakPool::open(&target, &options(Mode::Single, "wk"), &session).await;
    let phase = pool.run(Duration::from_millis(700), &session, None, "peak").await.expect("peak run");
    assert!(phase.completed > 0, "a peak run sends requests: {phase:#?}");
    assert_eq!(phase.scheduled, phase.completed, "a closed loop waits for every answer");
    assert_eq!(phase.statuses.values().sum::<u64>(), phase.completed, "{:?}", phase.statuses);
    assert_eq!(phase.ok_requests, phase.completed, "the baseline answers 200: {:?}", phase.statuses);
    assert_eq!(phase.latency.count, phase.completed);
    let timeline = session.take_timeline();
    assert_eq!(timeline.iter().map(|t| t.ok_rps).sum::<u64>(), phase.ok_requests, "every answer is in the timeline");
    // The connections stay open for the next run.
    let again = pool.run(Duration::from_millis(200), &session, None, "again").await.expect("second run");
    assert!(again.ok_requests > 0 && again.completed == again.ok_requests, "{again:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_reports_three_phases_after_searching_the_rate() {
    let settings = settings(in_process(TargetKind::GatewayNull), options(Mode::Single, "loadtest-write-key"), None);
    let shape = OverloadOptions {
        rate: None,
        baseline: Duration::from_secs(1),
        overload: Duration::from_secs(1),
        recovery: Duration::from_secs(2),
        max_connections: 4,
    };
    let report = overload_command(&settings, &shape, &search()).await.expect("overload scenario");
    let result = report.overload.as_ref().expect("the overload section");
    assert_eq!(result.rate_source, "searched");
    assert!(result.sustainable_rps >= 50.0, "{result:#?}");
    assert_eq!(result.phase_names.len(), 3);
    let scenario = report.runs.last().expect("the scenario run");
    assert_eq!(scenario.phases.len(), 3);
    let shares: Vec<f64> =
        scenario.phases.iter().map(|p| (p.offered_rps / result.sustainable_rps * 10.0).round() / 10.0).collect();
    assert_eq!(shares, vec![0.7, 2.0, 0.7], "0.7×R, 2×R, 0.7×R");
    assert_eq!(result.scheduled_requests, scenario.phases.iter().map(|p| p.scheduled).sum::<u64>());
    assert!(result.overload_start_s < result.overload_end_s);
    assert!(report.runs[0].find_max.is_some(), "the search for R is in the report");
    assert!(std::fs::read_to_string(settings.report_dir.join("report.html")).expect("html").contains("Overload"));
    let _ = std::fs::remove_dir_all(&settings.report_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_loses_no_acknowledged_event() {
    let tansu = Tansu::start_in_memory();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    // `overload` samples the spool gauge from the port it loads, as the gateways it starts
    // itself allow (loadtest/src/target.rs); /metrics is off the public port by default.
    config.http.public_metrics = true;
    let gateway = clickstream_gateway::server::start(config.clone()).await.expect("gateway starts");
    let spec = TargetSpec {
        kind: TargetKind::Gateway,
        url: Some(format!("http://{}", gateway.addr)),
        gateway: config.clone(),
        cpus: None,
        binary: None,
    };
    let e2e = E2eOptions {
        kafka: config.kafka.clone(),
        raw_topic: raw.clone(),
        enriched_topic: None,
        drain: Duration::from_secs(3),
    };
    let settings = settings(spec, options(Mode::Batch { events: 5 }, WRITE_KEY), Some(e2e));
    let shape = OverloadOptions {
        rate: Some(40.0),
        baseline: Duration::from_secs(2),
        overload: Duration::from_secs(2),
        recovery: Duration::from_secs(2),
        max_connections: 64,
    };
    let report = overload_command(&settings, &shape, &search()).await.expect("overload scenario");
    let result = report.overload.as_ref().expect("the overload section");
    assert_eq!((result.rate_source.as_str(), result.sustainable_rps), ("given", 40.0));
    assert_eq!(result.connections.0, 4, "the run started with --connections");
    assert!(result.connections.1 <= 64, "the pool grew past --max-connections: {:?}", result.connections);
    assert!(result.spool.is_some(), "the gateway's /metrics reports its spool: {result:#?}");
    let scenario = report.runs.last().expect("the scenario run");
    let e2e = scenario.e2e.as_ref().expect("end-to-end result");
    assert_eq!(e2e.acknowledged_events, result.acknowledged_events);
    assert!(e2e.acknowledged_events > 0, "{e2e:#?}");
    let raw_match = e2e.topics.iter().find(|t| t.topic == raw).expect("raw topic measured");
    assert_eq!(raw_match.lost, 0, "every 2xx event is in Kafka: {raw_match:#?}");
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&settings.report_dir);
}
