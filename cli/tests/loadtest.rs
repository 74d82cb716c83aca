//! `clickstream loadtest` as a user runs it: it starts the hyper baseline as its own pinned
//! process, offers a fixed rate, and writes the JSON and HTML reports.

use std::process::Command;

#[test]
fn loadtest_runs_a_pinned_baseline_and_writes_reports() {
    let dir = std::env::temp_dir().join(format!("clickstream-loadtest-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["loadtest", "run", "--target", "hyper-baseline", "--gateway-cpus", "0", "--rate", "200"])
        .args(["--duration", "1", "--warmup-secs", "0.5", "--connections", "4", "--no-progress", "--report-dir"])
        .arg(&dir)
        .output()
        .expect("run clickstream loadtest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("pinned to CPU 0"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json")).expect("JSON");
    let run = &report["runs"][0];
    assert_eq!(run["target"]["kind"], "hyper-baseline");
    assert_eq!(run["target"]["cpus"], "0");
    let phase = &run["phases"][0];
    assert_eq!(phase["scheduled"], 200);
    assert_eq!(phase["ok_requests"], 200, "{phase:#}");
    assert_eq!(phase["statuses"]["200"], 200);
    assert!(phase["latency"]["p99_ms"].as_f64().is_some_and(|p| p > 0.0));
    assert!(phase["server_cpu_cores"].is_number(), "the server's CPU is measured: {phase:#}");

    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert_eq!(html.matches("<svg").count(), 3, "three charts");
    assert!(html.contains("Latency percentiles over time") && !html.contains("no data"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn peak_mode_counts_every_response() {
    let dir = std::env::temp_dir().join(format!("clickstream-loadtest-peak-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["loadtest", "run", "--peak", "--target", "hyper-baseline", "--gateway-cpus", "none"])
        .args(["--duration", "1", "--warmup-secs", "0.2", "--connections", "4", "--no-progress", "--report-dir"])
        .arg(&dir)
        .output()
        .expect("run clickstream loadtest --peak");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("closed loop"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json")).expect("JSON");
    let run = &report["runs"][0];
    assert_eq!(run["peak"], true);
    let phase = &run["phases"][0];
    let completed = phase["completed"].as_u64().expect("completed");
    assert!(completed > 0, "{phase:#}");
    let counted: u64 = phase["statuses"].as_object().expect("statuses").values().filter_map(|v| v.as_u64()).sum();
    assert_eq!(counted, completed, "every response has a status: {phase:#}");
    assert_eq!(phase["ok_requests"].as_u64(), Some(completed));
    assert!(phase["server_cpu_cores"].is_number(), "the target's CPU is measured: {phase:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_connections_reports_memory_per_connection() {
    let dir = std::env::temp_dir().join(format!("clickstream-loadtest-idle-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["loadtest", "idle-connections", "--target", "gateway-null", "--connections", "50"])
        .args(["--gateway-cpus", "none", "--settle-secs", "0.3", "--no-progress", "--report-dir"])
        .arg(&dir)
        .output()
        .expect("run clickstream loadtest idle-connections");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("vs hyper-baseline"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json")).expect("JSON");
    let idle = report["idle_connections"].as_array().expect("idle_connections");
    let kinds: Vec<&str> = idle.iter().filter_map(|r| r["target"].as_str()).collect();
    assert_eq!(kinds, ["gateway-null", "hyper-baseline"]);
    for result in idle {
        assert_eq!(result["requested"], 50, "{result:#}");
        assert_eq!(result["answered"], 50, "every connection's request was answered: {result:#}");
        assert_eq!(result["still_open"], 50, "the connections stay open while idle: {result:#}");
        assert!(result["rss_before_bytes"].as_u64().is_some_and(|b| b > 0), "{result:#}");
        assert!(result["rss_after_bytes"].as_u64().is_some_and(|b| b > 0), "{result:#}");
        assert!(result["bytes_per_connection"].is_number(), "{result:#}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_peak_in_rounds_splits_the_cost_with_gateway_null_measures_the_latency_goal_at_seventy_percent_of_the_peak_and_reports_the_rounds_median(
) {
    let tansu = clickstream_tests::tansu::Tansu::start_in_memory();
    let bootstrap = tansu.bootstrap();
    let clickstream = env!("CARGO_BIN_EXE_clickstream");
    let topics = Command::new(clickstream).args(["topics", "apply", "--kafka-brokers", &bootstrap]).output();
    let topics = topics.expect("run clickstream topics apply");
    assert!(topics.status.success(), "{}", String::from_utf8_lossy(&topics.stderr));
    let dir = std::env::temp_dir().join(format!("clickstream-loadtest-compare-{}", std::process::id()));
    let output = Command::new(clickstream)
        .args(["loadtest", "compare", "--peak", "--peak-secs", "1", "--warmup-secs", "0.2", "--connections", "4"])
        .args(["--rounds", "2"])
        .args([
            "--batch",
            "5",
            "--gateway-cpus",
            "none",
            "--kafka-brokers",
            &bootstrap,
            "--no-progress",
            "--report-dir",
        ])
        .arg(&dir)
        .output()
        .expect("run clickstream loadtest compare --peak");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("p99 at 0.7x the closed-loop peak"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json")).expect("JSON");
    let runs = report["runs"].as_array().expect("runs");
    let labels: Vec<&str> = runs.iter().filter_map(|r| r["label"].as_str()).collect();
    let run =
        |label: &str| runs.iter().find(|r| r["label"] == label).unwrap_or_else(|| panic!("{label}, in {labels:?}"));
    // Round 1's runs, by their labels; its lines are the first printed.
    let run = |label: &str| run(&format!("round 1: {label}"));
    let peak = run("gateway / single event per request peak");
    let share = run("gateway / single event per request at 0.7x its peak");
    assert_eq!(share["peak"], false, "an open loop");
    let reached = peak["phases"][0]["achieved_rps"].as_f64().expect("the peak's rate");
    let offered = share["phases"][0]["offered_rps"].as_f64().expect("the offered rate");
    assert!((offered - 0.7 * reached).abs() <= 1.0, "offered {offered} for a peak of {reached}");
    assert!(share["phases"][0]["ok_requests"].as_u64().is_some_and(|ok| ok > 0), "{share:#}");
    // raw-kafka at the same rate, and the gap between the two p99s, as printed.
    let floor = run("raw-kafka / single event per request at 0.7x the gateway's peak");
    assert_eq!(floor["phases"][0]["offered_rps"].as_f64(), Some(offered), "the same rate");
    assert!(floor["phases"][0]["ok_requests"].as_u64().is_some_and(|ok| ok > 0), "{floor:#}");
    let p99 = |run: &serde_json::Value| run["phases"][0]["latency"]["p99_ms"].as_f64().expect("a p99");
    let gap = format!("so the gateway adds {:+.2} ms", p99(share) - p99(floor));
    assert!(stdout.contains(&gap), "{gap}, in {stdout}");
    assert!(stdout.contains("server CPU per request open loop at 0.7x"), "{stdout}");
    let rate = |label: &str| run(label)["phases"][0]["achieved_events_per_sec"].as_f64().expect("a rate");
    // The reported ratio is the median round's (of two, the lower), each round's from its own
    // peaks, with the figures that round measured.
    let ratios = report["comparison"].as_array().expect("ratios");
    let rounds: Vec<f64> = ratios[0]["rounds"].as_array().expect("rounds").iter().filter_map(|r| r.as_f64()).collect();
    assert_eq!(rounds.len(), 2, "{ratios:#?}");
    let hyper = rate("hyper-baseline / single event per request peak");
    assert!((rounds[0] - reached / hyper).abs() < 1e-9, "round 1's ratio {} from {reached} / {hyper}", rounds[0]);
    let median = ratios[0]["ratio"].as_f64().expect("a ratio");
    assert_eq!(median, rounds[0].min(rounds[1]), "the lower middle of {rounds:?}");
    let figures = |field: &str| ratios[0][field].as_f64().expect("a figure");
    assert!((figures("subject_value") / figures("baseline_value") - median).abs() < 1e-9, "{ratios:#?}");
    assert!(stdout.contains("== ratios, medians of 2 rounds"), "{stdout}");
    assert!(
        stdout.contains(&format!("median of 2 rounds ({:.2} {:.2}) = {median:.2}", rounds[0], rounds[1])),
        "{stdout}"
    );
    // Each split line ends with gateway-null's rate over its baseline's.
    let printed = |prefix: &str| {
        let line = stdout.lines().find(|l| l.contains(prefix)).unwrap_or_else(|| panic!("{prefix}, in {stdout}"));
        line.split(prefix).nth(1).and_then(|v| v.get(..4)).expect("a ratio").to_owned()
    };
    let single =
        rate("gateway-null / single event per request peak") / rate("hyper-baseline / single event per request peak");
    assert!(single > 0.0, "gateway-null answered");
    assert_eq!(printed("gateway-null / hyper-baseline: "), format!("{single:.2}"));
    let batch = rate("gateway-null / /v1/batch of 5 peak") / rate("raw-kafka / /v1/batch of 5 peak");
    assert_eq!(printed("gateway-null / raw-kafka by rate: "), format!("{batch:.2}"));
    let _ = std::fs::remove_dir_all(&dir);
}
