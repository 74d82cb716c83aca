//! A rolling restart under load, with real processes on Tansu: two gateways take traffic; one
//! gets SIGTERM while Kafka is down (its spool is not empty) and is started again on its volume
//! once Kafka is back; the other is restarted normally. Every acknowledged event is in Kafka.

use std::time::Duration;

use clickstream_tests::drill::{account, steady_load};
use clickstream_tests::gateway_process::GatewayProcess;
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{unique, WRITE_KEY};

const BINARY: &str = env!("CARGO_BIN_EXE_clickstream");
const HTTP: &str = "drain_delay_secs = 1\nshutdown_budget_secs = 3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_during_an_outage_loses_no_acknowledged_event() {
    let mut tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let (dir_a, dir_b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut first = GatewayProcess::configure(BINARY.as_ref(), dir_a.path(), &tansu.bootstrap(), &raw, &dlq, HTTP);
    let mut second = GatewayProcess::configure(BINARY.as_ref(), dir_b.path(), &tansu.bootstrap(), &raw, &dlq, HTTP);
    first.start();
    second.start();
    first.wait_for_status("ok", Duration::from_secs(30)).await;
    second.wait_for_status("ok", Duration::from_secs(30)).await;

    let runs = [unique("rolling-a"), unique("rolling-b")];
    let loads: Vec<_> = [&first, &second]
        .into_iter()
        .zip(runs.clone())
        .map(|(gateway, run)| {
            let url = format!("{}/v1/batch", gateway.url);
            tokio::spawn(async move { steady_load(&url, WRITE_KEY, &run, 2_000, 10, Duration::from_secs(20)).await })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    tansu.stop();
    first.wait_for_status("degraded", Duration::from_secs(10)).await;
    let spooled = first.wait_for_spooled_events(Duration::from_secs(20)).await;
    first.terminate();
    let status = first.wait_exit(Duration::from_secs(15)).expect("the first gateway exits within its budget");
    assert!(status.success(), "{status}\n{}", first.log_tail(3000));
    let left = first.spooled_records();
    eprintln!("first gateway stopped with Kafka down: {spooled} spooled, {left} left on its volume");
    assert!(left > 0, "Kafka was down, so its spool stays on the volume");

    tansu.restart();
    // The same volume under a new process, as a StatefulSet pod comes back with its PVC.
    first.start();
    first.wait_for_status("ok", Duration::from_secs(60)).await;
    assert_eq!(first.spool_gauge().await, Some(0), "the restarted gateway replayed its volume");
    second.terminate();
    let status = second.wait_exit(Duration::from_secs(15)).expect("the second gateway exits");
    assert!(status.success(), "{status}\n{}", second.log_tail(3000));
    second.start();
    second.wait_for_status("ok", Duration::from_secs(60)).await;

    let mut lost = Vec::new();
    for (load, run) in loads.into_iter().zip(&runs) {
        let outcome = load.await.expect("load");
        let accounting = account(&tansu.bootstrap(), &raw, run, &outcome.acked, Duration::from_secs(60)).await;
        eprintln!("{run}: {} requests ({:?}); {accounting}", outcome.requests, outcome.endings);
        assert!(accounting.acked >= 200, "{run}: requests were acknowledged around the restarts: {accounting}");
        lost.extend(accounting.lost);
    }
    assert!(lost.is_empty(), "acknowledged events lost: {:?}", &lost[..lost.len().min(20)]);
}
