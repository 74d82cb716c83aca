//! Early load shedding against the embedded mock cluster: while Kafka drains too slowly for
//! what already waits, or while the gateway's own CPU is saturated, new requests get a 503
//! naming the problem, the waiting ones are still acknowledged, and every acknowledged event
//! reaches Kafka.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    // A debug build spends long enough on a 1,000-event batch to look like a busy CPU; this
    // test is about Kafka's backlog alone.
    config.rate_limit.shed_lag_ms = 0;
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

/// What the load against the saturated gateway saw.
#[derive(Debug, Default)]
struct Seen {
    acked: HashSet<String>,
    /// Status and error kind of every answer, counted.
    endings: BTreeMap<String, usize>,
    shed_without_retry_after: usize,
}

/// Many concurrent batches against a gateway that has one runtime thread: requests queue for
/// that CPU, and the gateway must shed them with `cpu_overloaded` rather than let them wait.
/// Bounded in requests (and so in events, which the mock cluster must keep) and in time.
async fn saturate(url: &str, run: &str, workers: usize, max_requests: usize, budget: Duration) -> Seen {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let (sent, seen) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Seen::default())));
    let until = Instant::now() + budget;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, url, run, sent, seen) =
                (client.clone(), url.to_owned(), run.to_owned(), sent.clone(), seen.clone());
            tokio::spawn(async move {
                loop {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= max_requests || Instant::now() >= until {
                        return;
                    }
                    let ids: Vec<String> = (0..20).map(|e| format!("{run}-{n}-{e}")).collect();
                    let response = post_batch(&client, &url, &ids).await;
                    let (status, retry_after) = (response.status(), response.headers().contains_key("retry-after"));
                    let body: Value = response.json().await.unwrap_or_default();
                    let ending = format!("{} {}", status.as_u16(), body["error"].as_str().unwrap_or(""));
                    let mut seen = seen.lock().expect("seen");
                    *seen.endings.entry(ending).or_default() += 1;
                    if status == 200 {
                        seen.acked.extend(ids);
                    } else if status == 503 && !retry_after {
                        seen.shed_without_retry_after += 1;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("load task");
    }
    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    seen
}

/// Holds its runtime's thread for 100 ms, lets it go for 200 ms, until `hogging` is cleared.
async fn hog(hogging: Arc<AtomicBool>) {
    while hogging.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_saturated_cpu_sheds_with_cpu_overloaded_and_loses_nothing() {
    let broker = EmbeddedBroker::start(1).expect("mock cluster");
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    broker.create_topic(&raw, 3).expect("topic");
    broker.create_topic(&dlq, 1).expect("topic");
    let mut config = gateway_config(broker.bootstrap_servers(), &raw, &dlq);
    config.rate_limit.shed_lag_ms = 50;
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let gateway = server.block_on(clickstream_gateway::start(config)).expect("gateway");
    let (url, admin) = (format!("http://{}/v1/batch", gateway.addr), gateway.admin_addr.expect("admin listener"));
    let run = unique("cpu");

    // The load alone saturated the thread in most runs, not in all (one CI run answered all
    // 1,000 requests with 200): a task that holds the runtime's only thread for 100 ms of every
    // 300, as a burst of CPU-heavy requests would, makes the saturation certain.
    let hogging = Arc::new(AtomicBool::new(true));
    server.spawn(hog(hogging.clone()));
    let load = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // 20,000 events at most: the mock cluster keeps about 5 MiB per partition.
    let seen = load.block_on(saturate(&url, &run, 200, 1_000, Duration::from_secs(20)));
    hogging.store(false, Ordering::Relaxed);
    eprintln!("cpu overload: {:?}; {} events acknowledged", seen.endings, seen.acked.len());
    let shed = seen.endings.get("503 cpu_overloaded").copied().unwrap_or_default();
    assert!(shed > 0, "a gateway with one saturated thread shed nothing: {:?}", seen.endings);
    assert_eq!(seen.shed_without_retry_after, 0, "every 503 carries Retry-After");
    let unexpected: Vec<_> = seen.endings.keys().filter(|e| !e.starts_with("200") && !e.starts_with("503")).collect();
    assert!(unexpected.is_empty(), "only 200s and 503s: {:?}", seen.endings);
    assert!(!seen.acked.is_empty(), "shedding must not refuse everything: {:?}", seen.endings);

    load.block_on(async {
        let client = reqwest::Client::new();
        let metrics = client.get(format!("http://{admin}/metrics")).send().await.expect("metrics");
        let text = metrics.text().await.expect("metrics text");
        let counted =
            text.lines().any(|l| l.starts_with("clickstream_shed_total{") && l.contains("error=\"cpu_overloaded\""));
        assert!(counted, "shed requests are counted by error kind:\n{text}");

        let mut acked = seen.acked;
        let after: Vec<String> = (0..10).map(|e| format!("{run}-after-{e}")).collect();
        let mut accepted = false;
        for _ in 0..100 {
            if post_batch(&client, &url, &after).await.status() == 200 {
                accepted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(accepted, "requests were still shed after the load stopped");
        acked.extend(after);
        let accounting = account(broker.bootstrap_servers(), &raw, &run, &acked, Duration::from_secs(60)).await;
        eprintln!("cpu overload: {accounting}");
        assert!(
            accounting.lost.is_empty(),
            "acknowledged events lost: {:?}",
            &accounting.lost[..accounting.lost.len().min(20)]
        );
    });
    server.block_on(gateway.shutdown());
}
