//! The `clickstream gateway` binary stopped hard while its spool holds events (Tansu is down,
//! `ack=kafka`): SIGKILL then a restart, SIGKILL then `clickstream spool replay` from another
//! process, and SIGTERM within its shutdown budget. Every acknowledged event reaches Kafka.

use std::process::Command;
use std::time::{Duration, Instant};

use clickstream_tests::drill::{account, steady_load, LoadOutcome};
use clickstream_tests::gateway_process::GatewayProcess;
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{unique, WRITE_KEY};
use tokio::task::JoinHandle;

const BINARY: &str = env!("CARGO_BIN_EXE_clickstream");

/// Tansu with fresh topics, and a configured (not yet started) gateway process on it.
async fn setup(http_extra: &str) -> (Tansu, GatewayProcess, String, tempfile::TempDir) {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let gateway = GatewayProcess::configure(BINARY.as_ref(), dir.path(), &tansu.bootstrap(), &raw, &dlq, http_extra);
    (tansu, gateway, raw, dir)
}

fn load(gateway: &GatewayProcess, run: &str, events: usize, over: Duration) -> JoinHandle<LoadOutcome> {
    let (url, run) = (format!("{}/v1/batch", gateway.url), run.to_owned());
    tokio::spawn(async move { steady_load(&url, WRITE_KEY, &run, events, 10, over).await })
}

/// Stops Tansu under load and waits until the gateway has spooled events.
async fn spool_some(tansu: &mut Tansu, gateway: &GatewayProcess) -> u64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    tansu.stop();
    gateway.wait_for_status("degraded", Duration::from_secs(10)).await;
    // Events reach the spool only once their delivery misses its deadline, seconds after the
    // broker went away, so the gauge is waited for rather than slept for.
    let spooled = gateway.wait_for_spooled_events(Duration::from_secs(20)).await;
    eprintln!("{spooled} events in the spool");
    spooled
}

async fn assert_none_lost(tansu: &Tansu, raw: &str, run: &str, outcome: &LoadOutcome, gateway: &GatewayProcess) {
    let accounting = account(&tansu.bootstrap(), raw, run, &outcome.acked, Duration::from_secs(60)).await;
    eprintln!("{run}: {} requests ({:?}); {accounting}", outcome.requests, outcome.endings);
    eprintln!("gateway log (last 3000 bytes):\n{}", gateway.log_tail(3000));
    assert!(
        accounting.lost.is_empty(),
        "acknowledged events lost: {:?}",
        &accounting.lost[..accounting.lost.len().min(20)]
    );
    assert!(accounting.acked >= 100, "requests were acknowledged around the stop: {accounting}");
}

fn spool_replay(gateway: &GatewayProcess) -> std::process::Output {
    Command::new(BINARY)
        .args(["spool", "replay", "--timeout-secs", "60", "--config"])
        .arg(&gateway.config)
        .arg("--dir")
        .arg(&gateway.spool)
        .output()
        .expect("clickstream spool replay runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_a_full_spool_loses_no_acknowledged_event() {
    let (mut tansu, mut gateway, raw, _dir) = setup("drain_delay_secs = 0\nshutdown_budget_secs = 2").await;
    gateway.start();
    gateway.wait_for_status("ok", Duration::from_secs(30)).await;
    let run = unique("sigkill");
    let load = load(&gateway, &run, 1_200, Duration::from_secs(12));
    let spooled = spool_some(&mut tansu, &gateway).await;
    gateway.kill();
    // What the restart must replay is what is on disk now, read as the gateway reads it.
    let on_disk = gateway.spooled_records();
    eprintln!("gateway killed; its spool directory holds {on_disk} records");
    assert!(on_disk > 0, "the killed gateway reported {spooled} spooled events but left none on disk");
    gateway.start();
    gateway.wait_for_status("degraded", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    tansu.restart();
    let outcome = load.await.expect("load");
    gateway.wait_for_status("ok", Duration::from_secs(90)).await;
    assert_none_lost(&tansu, &raw, &run, &outcome, &gateway).await;
}

/// A pod that is gone for good: its spool directory is emptied by `spool replay` elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_spool_is_replayed_by_another_process() {
    let (mut tansu, mut gateway, raw, _dir) = setup("drain_delay_secs = 0\nshutdown_budget_secs = 2").await;
    gateway.start();
    gateway.wait_for_status("ok", Duration::from_secs(30)).await;
    let run = unique("orphan");
    let load = load(&gateway, &run, 800, Duration::from_secs(8));
    spool_some(&mut tansu, &gateway).await;
    gateway.kill();
    let outcome = load.await.expect("load");
    let on_disk = gateway.spooled_records();
    assert!(on_disk > 0, "the killed gateway left its spool on disk");
    tansu.restart();
    let replay = spool_replay(&gateway);
    let stdout = String::from_utf8_lossy(&replay.stdout);
    eprintln!("spool replay: {stdout}{}", String::from_utf8_lossy(&replay.stderr));
    assert!(replay.status.success(), "spool replay failed: {stdout}");
    assert!(stdout.contains(&format!("{on_disk} records found, {on_disk} replayed")), "{stdout}");
    assert_eq!(gateway.spooled_records(), 0, "the directory is empty afterwards");
    assert_none_lost(&tansu, &raw, &run, &outcome, &gateway).await;
}

/// SIGTERM while Kafka is down: unready at once, served through the drain delay, gone within
/// the budget, and what it could not send is on disk for whoever replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_kafka_down_ends_within_the_budget_and_keeps_the_spool() {
    const DRAIN: u64 = 2;
    const BUDGET: u64 = 3;
    let (mut tansu, mut gateway, raw, _dir) =
        setup(&format!("drain_delay_secs = {DRAIN}\nshutdown_budget_secs = {BUDGET}")).await;
    gateway.start();
    gateway.wait_for_status("ok", Duration::from_secs(30)).await;
    let run = unique("sigterm");
    let load = load(&gateway, &run, 800, Duration::from_secs(10));
    spool_some(&mut tansu, &gateway).await;
    let stopped_at = Instant::now();
    gateway.terminate();
    // The signal reaches the gateway's handler task asynchronously, so readiness is polled; it
    // must turn well inside the drain delay, while the listener still serves.
    let mut statuses = Vec::new();
    while stopped_at.elapsed() < Duration::from_secs(DRAIN) / 2 {
        let readiness =
            reqwest::get(format!("{}/readyz", gateway.admin_url)).await.expect("admin answers while draining");
        statuses.push(readiness.status().as_u16());
        if statuses.last() == Some(&503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(statuses.last(), Some(&503), "unready within half the drain delay: {statuses:?}");
    let status = gateway.wait_exit(Duration::from_secs(DRAIN + BUDGET + 10)).expect("the gateway exits");
    let took = stopped_at.elapsed();
    eprintln!("SIGTERM to exit: {took:?} ({status})");
    assert!(status.success(), "a clean exit: {status}\n{}", gateway.log_tail(3000));
    assert!(took >= Duration::from_secs(DRAIN), "it kept serving through the drain delay: {took:?}");
    // Exporters and the admin listener add a little after the budget, never another budget.
    assert!(took < Duration::from_secs(DRAIN + BUDGET + 3), "shutdown overran its budget: {took:?}");
    let outcome = load.await.expect("load");
    let on_disk = gateway.spooled_records();
    assert!(on_disk > 0, "Kafka was down, so the spool stays on disk");
    assert!(gateway.log_tail(4000).contains("events stay in the spool"), "the leftover is reported");
    tansu.restart();
    let replay = spool_replay(&gateway);
    assert!(replay.status.success(), "spool replay: {}", String::from_utf8_lossy(&replay.stderr));
    assert_none_lost(&tansu, &raw, &run, &outcome, &gateway).await;
}
