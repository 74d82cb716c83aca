//! The `clickstream gateway` binary killed with SIGKILL under load, in `ack=kafka` mode, while
//! its spool holds events (Tansu is down), then restarted: every acknowledged event still
//! reaches Kafka.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clickstream_tests::drill::{account, steady_load};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{unique, WRITE_KEY};

fn start_gateway(config: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("gateway.log"))
        .expect("gateway log");
    Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["gateway", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("clickstream gateway starts")
}

async fn wait_for(url: &str, wanted: &str, timeout: Duration) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(response) = client.get(format!("{url}/readyz")).send().await {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if body["status"] == wanted {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "gateway not {wanted} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the gateway's `clickstream_spool_events` gauge (on the admin listener at `url`)
/// is above zero, and returns it.
async fn wait_for_spooled_events(url: &str, timeout: Duration) -> u64 {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(response) = client.get(format!("{url}/metrics")).send().await {
            let text = response.text().await.unwrap_or_default();
            let events = text
                .lines()
                .find_map(|l| l.strip_prefix("clickstream_spool_events "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_default();
            if events > 0.0 {
                return events as u64;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no event reached the spool within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records waiting in the spool directory `dir`, as a gateway opening it would count them.
fn spooled_records(dir: &std::path::Path) -> u64 {
    let config = clickstream_gateway::config::SpoolConfig { dir: dir.display().to_string(), ..Default::default() };
    clickstream_gateway::spool::Spool::open(&config).expect("the spool directory opens").stats().records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_a_full_spool_loses_no_acknowledged_event() {
    let mut tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let free_port = || TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let (port, admin_port) = (free_port(), free_port());
    let config = dir.path().join("clickstream.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\ndrain_delay_secs = 0\nshutdown_budget_secs = 2\n\
             [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
             [kafka]\nbootstrap_servers = \"{}\"\n\
             [producer]\nhealth_interval_ms = 250\nmessage_timeout_ms = 3000\n\
             [delivery]\nack = \"kafka\"\n\
             [topics]\nraw = \"{raw}\"\ndlq = \"{dlq}\"\n\
             [spool]\ndir = \"{}\"\n\
             [[sources]]\nname = \"kill-test\"\nwrite_key = \"{WRITE_KEY}\"\n",
            tansu.bootstrap(),
            dir.path().join("spool").display()
        ),
    )
    .expect("config");
    let url = format!("http://127.0.0.1:{port}");
    let mut gateway = start_gateway(&config);
    wait_for(&url, "ok", Duration::from_secs(30)).await;

    let run = unique("sigkill");
    let load = tokio::spawn({
        let (url, run) = (format!("{url}/v1/batch"), run.clone());
        async move { steady_load(&url, WRITE_KEY, &run, 1_200, 10, Duration::from_secs(12)).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    tansu.stop();
    wait_for(&url, "degraded", Duration::from_secs(10)).await;
    // Events reach the spool only once their delivery misses its deadline, seconds after the
    // broker went away; a fixed sleep sometimes killed the gateway before that (an empty spool,
    // so nothing to prove).
    let spooled = wait_for_spooled_events(&format!("http://127.0.0.1:{admin_port}"), Duration::from_secs(20)).await;
    eprintln!("{spooled} events in the spool");
    gateway.kill().expect("SIGKILL");
    let _ = gateway.wait();
    // What the restart must replay is what is on disk now, read the way the gateway reads it
    // (and the lock the killed process held must be free).
    let on_disk = spooled_records(&dir.path().join("spool"));
    eprintln!("gateway killed; its spool directory holds {on_disk} records");
    assert!(on_disk > 0, "the killed gateway reported {spooled} spooled events but left none on disk");
    gateway = start_gateway(&config);
    wait_for(&url, "degraded", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    tansu.restart();
    let outcome = load.await.expect("load");
    wait_for(&url, "ok", Duration::from_secs(90)).await;

    let accounting = account(&tansu.bootstrap(), &raw, &run, &outcome.acked, Duration::from_secs(60)).await;
    eprintln!("sigkill: {} requests ({:?}); {accounting}", outcome.requests, outcome.endings);
    let _ = gateway.kill();
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    eprintln!("gateway log (last 3000 bytes):\n{}", &log[log.len().saturating_sub(3000)..]);
    assert!(
        accounting.lost.is_empty(),
        "acknowledged events lost: {:?}",
        &accounting.lost[..accounting.lost.len().min(20)]
    );
    // Requests before the outage and while spooling are acknowledged; only the restart gap is not.
    assert!(accounting.acked >= 300, "requests were acknowledged around the kill: {accounting}");
}
