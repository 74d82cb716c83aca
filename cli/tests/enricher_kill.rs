//! The `clickstream enricher` binary killed with SIGKILL mid-stream and restarted, against
//! Tansu in its own process with sqlite storage: in `exactly_once_idempotent` mode every input
//! `messageId` appears exactly once on the enriched topic; in `at_least_once` mode none is lost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clickstream_enricher::config::Guarantee;
use clickstream_tests::enricher::{keyed, produce, track, EnricherTopics};
use clickstream_tests::enricher_process::{
    committed_so_far, group_reader, message_id_counts, read_until_quiet, tail, written_so_far, EnricherProcess,
};
use clickstream_tests::tansu::Tansu;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;
use serde_json::json;

fn start_enricher(
    topics: &EnricherTopics,
    bootstrap: &str,
    guarantee: Guarantee,
    log: &std::path::Path,
) -> EnricherProcess {
    // Each visitor here comes back about every 100 s of event time; a one-minute gap closes
    // sessions often, so a restart replays a bounded stretch, as with real traffic.
    let extra = ["enricher.sessions.inactivity_minutes=1"];
    EnricherProcess::start(env!("CARGO_BIN_EXE_clickstream").as_ref(), topics, bootstrap, guarantee, &extra, log)
}

/// Input fed beyond each kill's output target.
const AHEAD: usize = 2_000;

/// Feeds `total` events to the enricher and SIGKILLs it `kills` times while it works
/// through them, each time after that instance has committed progress, so every restart
/// resumes from committed offsets; returns the messageId counts on the enriched topic and the
/// output count at each kill.
async fn run_with_kills(guarantee: Guarantee, total: usize, kills: usize) -> (HashMap<String, usize>, Vec<i64>) {
    // One at a time: two brokers and two enrichers on two cores starve each other.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    // Sqlite storage, as a broker that persists; `Tansu::start` adds the header index Tansu
    // 0.6.0 lacks, without which its fetches stall the group coordinator for a minute here.
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 3).await;
    let catalog: Vec<_> = (1..=5)
        .map(|i| {
            (Some(format!("p{i}")), Some(json!({"id": format!("p{i}"), "name": format!("Product {i}"), "price": i})))
        })
        .collect();
    produce(&bootstrap, &topics.products, &catalog);
    let events: Vec<_> = (0..total)
        .map(|i| {
            let at = format!("2026-01-01T{:02}:{:02}:{:02}.000Z", 10 + i / 3600, (i / 60) % 60, i % 60);
            track(
                &format!("m{i}"),
                &format!("v{}", i % 97),
                "Product Viewed",
                json!({"product_id": format!("p{}", i % 6)}),
                &at,
            )
        })
        .collect();
    let records = keyed(&events);
    let mut fed = 0;
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("enricher.log");
    let mut enricher = start_enricher(&topics, &bootstrap, guarantee, &log);
    // One long-lived client: a new connection every poll would load the broker for nothing.
    let watcher: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("watcher");
    // Reads the enricher group's committed offsets without joining the group.
    let group_reader = group_reader(&bootstrap, &topics.group);

    let mut seen_at_kill = Vec::new();
    let step = (total / (kills + 1)) as i64;
    let mut committed_before = 0;
    for kill in 1..=kills {
        // Kill once this instance has written more output (it is mid-stream) and committed
        // progress of its own, so the restart resumes from committed offsets, not the start.
        let target = step * kill as i64;
        // Input arrives in stretches that end a little past each kill's target, so the
        // enricher cannot finish the stream before the kill however slowly its commits land.
        let feed_to = total.min(usize::try_from(target).unwrap_or(total) + AHEAD);
        produce(&bootstrap, &topics.raw, &records[fed..feed_to]);
        fed = feed_to;
        let deadline = Instant::now() + Duration::from_secs(180);
        while written_so_far(&watcher, &topics.enriched, 3) < target
            || committed_so_far(&group_reader, &topics.raw, 3) <= committed_before
        {
            assert!(
                Instant::now() < deadline,
                "no output to {target} or no new commit before kill {kill}; enricher log:\n{}\ntansu log tail:\n{}",
                tail(&std::fs::read_to_string(&log).unwrap_or_default()),
                tail(&tansu.log())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        enricher.kill();
        committed_before = committed_so_far(&group_reader, &topics.raw, 3);
        // Tansu 0.6 can leave a group stuck when a member joins while a killed member is still
        // in it; wait out the killed member's 30 s session first. Apache Kafka does not need this.
        tokio::time::sleep(Duration::from_secs(31)).await;
        // Counted after the wait, so outputs the broker was still writing at the kill are in.
        seen_at_kill.push(written_so_far(&watcher, &topics.enriched, 3));
        println!("kill {kill}: {} outputs, {committed_before} input offsets committed", seen_at_kill[kill - 1]);
        enricher = start_enricher(&topics, &bootstrap, guarantee, &log);
    }
    produce(&bootstrap, &topics.raw, &records[fed..]);
    let counts = tokio::task::spawn_blocking({
        let (bootstrap, enriched) = (bootstrap.clone(), topics.enriched.clone());
        move || {
            let values = read_until_quiet(&bootstrap, &enriched, Duration::from_secs(300), |values| {
                message_id_counts(values).len() >= total
            });
            message_id_counts(&values)
        }
    })
    .await
    .expect("reader");
    drop(enricher);
    let resumes: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("resuming") || l.contains("WARN") || l.contains("ERROR"))
        .map(str::to_owned)
        .collect();
    if counts.len() < total || counts.values().any(|n| *n > 1) {
        eprintln!("enricher resumes and warnings:\n{}", resumes.join("\n"));
    }
    (counts, seen_at_kill)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_idempotent_survives_three_sigkills() {
    let total = 20_000;
    let (counts, kills) = run_with_kills(Guarantee::ExactlyOnceIdempotent, total, 3).await;
    assert!(kills.iter().all(|k| *k > 0 && *k < total as i64), "every kill was mid-stream: {kills:?}");
    let missing: Vec<String> = (0..total).map(|i| format!("m{i}")).filter(|id| !counts.contains_key(id)).collect();
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(missing.is_empty(), "{} missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(repeated.is_empty(), "{} repeated, e.g. {:?}", repeated.len(), &repeated[..repeated.len().min(5)]);
    assert_eq!(counts.len(), total);
    println!("exactly once after SIGKILLs at enriched counts {kills:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_loses_nothing_after_sigkill() {
    let total = 10_000;
    let (counts, kills) = run_with_kills(Guarantee::AtLeastOnce, total, 1).await;
    assert!(kills[0] > 0 && kills[0] < total as i64, "the kill was mid-stream: {kills:?}");
    let missing = (0..total).filter(|i| !counts.contains_key(&format!("m{i}"))).count();
    assert_eq!(missing, 0, "at-least-once lost events");
    let repeats: usize = counts.values().map(|n| n - 1).sum();
    // Each input has one output and a commit follows a flush, so resuming from committed
    // offsets (non-zero at the kill) repeats fewer outputs than were written before it.
    assert!((repeats as i64) < kills[0], "the restart replayed everything: {repeats} repeats of {kills:?}");
    println!("at least once after a SIGKILL at {kills:?}: {repeats} repeats");
}
