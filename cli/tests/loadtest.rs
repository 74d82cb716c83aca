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
