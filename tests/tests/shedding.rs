//! Early load shedding against the embedded mock cluster: while Kafka drains too slowly for
//! what already waits, new requests get a 503 naming the problem, the waiting ones are still
//! acknowledged, and every acknowledged event reaches Kafka once the broker catches up.

use std::collections::HashSet;
use std::time::Duration;

use clickstream_platform::broker::EmbeddedBroker;
use clickstream_tests::drill::account;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};
use serde_json::{json, Value};

async fn try_post(client: &reqwest::Client, url: &str, ids: &[String]) -> reqwest::Result<reqwest::Response> {
    let events: Vec<Value> =
        ids.iter().map(|id| json!({"type": "track", "event": "Shed", "anonymousId": "v1", "messageId": id})).collect();
    client.post(url).basic_auth(WRITE_KEY, Some("")).json(&json!({"batch": events})).send().await
}

async fn post_batch(client: &reqwest::Client, url: &str, ids: &[String]) -> reqwest::Response {
    try_post(client, url, ids).await.expect("post")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_kafka_sheds_new_requests_and_recovers_without_loss() {
    let broker = EmbeddedBroker::start(1).expect("mock cluster");
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    broker.create_topic(&raw, 3).expect("topic");
    broker.create_topic(&dlq, 1).expect("topic");
    let mut config = gateway_config(broker.bootstrap_servers(), &raw, &dlq);
    config.delivery.shed_wait_ms = 200;
    // Long enough that the waiting requests are answered by Kafka, not by the spool.
    config.delivery.enqueue_deadline_ms = 20_000;
    config.producer.message_timeout_ms = 30_000;
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let url = format!("http://{}/v1/batch", gateway.addr);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let run = unique("shed");
    let ids = |from: usize, count: usize| (from..from + count).map(|n| format!("{run}-{n}")).collect::<Vec<_>>();

    // Below the reachability probe's 2 s timeout, so Kafka stays reachable, only slow.
    broker.set_round_trip_time(Duration::from_millis(1_500)).expect("rtt");
    let waiting: Vec<_> = (0..4)
        .map(|r| {
            let (client, url, ids) = (client.clone(), url.clone(), ids(r * 1_000, 1_000));
            tokio::spawn(async move { (post_batch(&client, &url, &ids).await.status(), ids) })
        })
        .collect();

    // The backlog now drains at about nothing: a new request is shed instead of queued. A
    // probe that was queued instead times out here; it is not counted as acknowledged.
    let probe = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    let mut shed = None;
    for attempt in 0..20 {
        match try_post(&probe, &url, &ids(10_000 + attempt, 1)).await {
            Ok(response) if response.status() == 503 => {
                shed = Some(response);
                break;
            }
            Ok(response) => assert_eq!(response.status(), 200, "before shedding starts, requests are accepted"),
            Err(error) => assert!(error.is_timeout(), "probe failed: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shed = shed.expect("no request was shed while 4,000 events waited on a stalled broker");
    assert_eq!(shed.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default()), Some("1"));
    let body: Value = shed.json().await.expect("json body");
    assert_eq!(body["error"], "kafka_behind", "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("waiting to be delivered"), "{body}");

    broker.set_round_trip_time(Duration::ZERO).expect("rtt");
    let mut acked: HashSet<String> = HashSet::new();
    for task in waiting {
        let (status, ids) = task.await.expect("request task");
        assert_eq!(status, 200, "requests queued before shedding began are still acknowledged");
        acked.extend(ids);
    }
    // Once the backlog drains, requests are accepted again.
    let after = ids(20_000, 10);
    let mut accepted = false;
    for _ in 0..100 {
        if post_batch(&client, &url, &after).await.status() == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "requests were still shed after the broker recovered");
    acked.extend(after);

    let accounting = account(broker.bootstrap_servers(), &raw, &run, &acked, Duration::from_secs(30)).await;
    eprintln!("shedding: {accounting}");
    assert!(
        accounting.lost.is_empty(),
        "acknowledged events lost: {:?}",
        &accounting.lost[..accounting.lost.len().min(20)]
    );
    gateway.shutdown().await;
}
