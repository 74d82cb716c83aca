//! The transactional mode's call sequence against librdkafka's mock cluster, which accepts
//! transactions without enforcing them: the start-up probe refuses it unless told otherwise,
//! an abortable error aborts and resumes, an injected PRODUCER_FENCED makes a new producer, and
//! offsets are never committed outside a transaction. No exactly-once claim is tested here.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clickstream_enricher::config::Guarantee;
use clickstream_enricher::metrics::EnricherMetrics;
use clickstream_enricher::StartError;
use clickstream_platform::broker::EmbeddedBroker;
use clickstream_tests::enricher::{keyed, produce, track, EnricherTopics};
use clickstream_tests::kafka::read_until;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::json;

fn events(from: usize, to: usize) -> Vec<(Option<String>, Option<serde_json::Value>)> {
    let events: Vec<_> = (from..to)
        .map(|i| {
            track(
                &format!("t{i}"),
                &format!("v{}", i % 7),
                "Product Viewed",
                json!({"product_id": "p1"}),
                "2026-01-01T10:00:00.000Z",
            )
        })
        .collect();
    keyed(&events)
}

async fn wait_for(what: &str, metrics: &EnricherMetrics, done: impl Fn(&EnricherMetrics) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(metrics) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", metrics.snapshot());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_mode_aborts_recreates_fenced_producers_and_commits_only_in_transactions() {
    let broker = EmbeddedBroker::start(1).expect("mock cluster");
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topics = EnricherTopics::new();
    for (name, partitions) in [
        (&topics.raw, 2),
        (&topics.enriched, 2),
        (&topics.repartition, 2),
        (&topics.window_watermarks, 2),
        (&topics.products, 1),
        (&topics.aggregates, 1),
        (&topics.dlq, 1),
        (&topics.product_versions, 1),
    ] {
        broker.create_topic(name, partitions).expect("topic");
    }
    produce(&bootstrap, &topics.products, &[(Some("p1".into()), Some(json!({"id": "p1", "name": "Mug"})))]);

    let mut config = topics.config(&bootstrap, Guarantee::ExactlyOnceTransactional);
    config.enricher.startup_timeout_secs = 10;
    // One group member: the mock cluster can refuse a follower's early SyncGroup and then wait
    // out the rebalance timeout (see `clickstream dev`).
    config.enricher.threads = 1;
    let refused = tokio::task::spawn_blocking({
        let config = config.clone();
        move || clickstream_enricher::start(config)
    })
    .await
    .expect("join");
    match refused {
        Err(StartError::Transactions(why)) => assert!(why.contains("mock cluster"), "{why}"),
        other => panic!("the probe must refuse a broker that does not enforce transactions: {other:?}"),
    }

    config.enricher.allow_unenforced_transactions = true;
    let enricher = tokio::task::spawn_blocking(move || clickstream_enricher::start(config))
        .await
        .expect("join")
        .expect("starts when allowed");
    let metrics = enricher.metrics.clone();
    let commits = |m: &EnricherMetrics| EnricherMetrics::get(&m.transaction_commits);

    produce(&bootstrap, &topics.raw, &events(0, 50));
    wait_for("a first commit", &metrics, |m| commits(m) >= 1 && EnricherMetrics::get(&m.events_enriched) >= 50).await;

    // An abortable error: sending the offsets fails, so the transaction is aborted and the
    // pipeline resumes from the last committed transaction.
    broker
        .inject_request_errors(
            RDKafkaApiKey::AddOffsetsToTxn,
            vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED],
        )
        .expect("inject");
    let producers_before = EnricherMetrics::get(&metrics.producers_created);
    produce(&bootstrap, &topics.raw, &events(50, 100));
    // Usually an abort. When the abort call itself fails (seen once, on a loaded machine), the
    // enricher replaces the producer instead, whose init_transactions aborts the open
    // transaction: either way nothing of it is committed, and the pipeline goes on.
    wait_for("an abort, or a producer replaced after a failed abort", &metrics, |m| {
        EnricherMetrics::get(&m.transaction_aborts) >= 1
            || EnricherMetrics::get(&m.producers_created) > producers_before
    })
    .await;
    let after_abort = commits(&metrics);
    wait_for("a commit after the abort", &metrics, |m| commits(m) > after_abort).await;

    // A fenced producer cannot continue: the enricher must build a new one.
    let producers = EnricherMetrics::get(&metrics.producers_created);
    broker
        .inject_request_errors(RDKafkaApiKey::EndTxn, vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED])
        .expect("inject");
    produce(&bootstrap, &topics.raw, &events(100, 150));
    wait_for("a new producer", &metrics, |m| EnricherMetrics::get(&m.producers_created) > producers).await;
    let after_fence = commits(&metrics);
    wait_for("a commit with the new producer", &metrics, |m| commits(m) > after_fence).await;

    assert_eq!(EnricherMetrics::get(&metrics.offset_commits), 0, "offsets are committed only inside transactions");
    assert!(metrics.pipeline_restarts.load(Ordering::Relaxed) >= 2);
    // The mock keeps aborted records visible, so only presence is checked, not uniqueness.
    let all_present = |read: &[clickstream_tests::kafka::ReadBack]| {
        (0..150).all(|i| read.iter().any(|m| m.value["messageId"] == format!("t{i}").as_str()))
    };
    read_until(&bootstrap, &topics.enriched, Duration::from_secs(30), all_present).await;
    tokio::task::spawn_blocking(move || enricher.stop()).await.expect("stop");
}
