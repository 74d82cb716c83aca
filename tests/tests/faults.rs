//! Fault tests: under a steady load, break the broker and check that every event that got a
//! 2xx is in Kafka afterwards. Repeats are allowed (a delivery timeout followed by a replay can
//! repeat an event) and printed.

use std::time::Duration;

use clickstream_gateway::{GatewayConfig, GatewayHandle};
use clickstream_platform::broker::EmbeddedBroker;
use clickstream_tests::drill::{account, steady_load, LoadOutcome};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};

/// A mock cluster with a fresh raw topic of `partitions` and a DLQ, and a gateway config for them.
fn on_mock_cluster(partitions: i32) -> (EmbeddedBroker, String, GatewayConfig) {
    let broker = EmbeddedBroker::start(1).expect("mock cluster");
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    broker.create_topic(&raw, partitions).expect("topic");
    broker.create_topic(&dlq, 1).expect("topic");
    let config = gateway_config(broker.bootstrap_servers(), &raw, &dlq);
    (broker, raw, config)
}

/// A gateway with a steady load of `events` on `/v1/batch` running in the background, ready for
/// a fault to be injected.
struct UnderLoad {
    gateway: GatewayHandle,
    url: String,
    /// The load's run id, by which `account` finds its events.
    run: String,
    load: tokio::task::JoinHandle<LoadOutcome>,
}

/// Starts a gateway with `config` and spreads `events`, in batches of 10, over `span` of load.
async fn under_load(config: GatewayConfig, run_name: &str, events: usize, span: Duration) -> UnderLoad {
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let url = format!("http://{}", gateway.addr);
    let run = unique(run_name);
    let load = tokio::spawn({
        let (url, run) = (format!("{url}/v1/batch"), run.clone());
        async move { steady_load(&url, WRITE_KEY, &run, events, 10, span).await }
    });
    UnderLoad { gateway, url, run, load }
}

/// Polls `/readyz` until the spool has drained into Kafka; false if it did not in time.
async fn drained(url: &str, timeout: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status = client.get(format!("{url}/readyz")).send().await.ok();
        let body: serde_json::Value = match status {
            Some(response) => response.json().await.unwrap_or_default(),
            None => serde_json::Value::Null,
        };
        if body["status"] == "ok" {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            eprintln!("spool not drained within {timeout:?}: {body}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn readiness(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/readyz")).await.expect("readyz").json().await.expect("json")
}

/// The most events the spool held at once in the next `span`, by the admin listener's gauge.
async fn most_spooled(admin: std::net::SocketAddr, span: Duration) -> u64 {
    let client = reqwest::Client::new();
    let until = tokio::time::Instant::now() + span;
    let mut most = 0_u64;
    while tokio::time::Instant::now() < until {
        if let Ok(response) = client.get(format!("http://{admin}/metrics")).send().await {
            let text = response.text().await.unwrap_or_default();
            let now = text
                .lines()
                .find_map(|line| line.strip_prefix("clickstream_spool_events "))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            most = most.max(now as u64);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    most
}

/// Waits for `/readyz` to report spooling, proving the fault reached the delivery path.
async fn wait_until_degraded(url: &str, timeout: Duration) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let body: serde_json::Value =
            client.get(format!("{url}/readyz")).send().await.expect("readyz").json().await.expect("json");
        if body["status"] == "degraded" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "gateway never reported spooling: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_20_second_tansu_outage() {
    clickstream_platform::logging::init_logging(false);
    let mut tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    let UnderLoad { gateway, url, run, load } = under_load(config, "outage", 1_500, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    tansu.stop();
    eprintln!("tansu stopped");
    wait_until_degraded(&url, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    tansu.restart();
    eprintln!("tansu restarted");
    let outcome = load.await.expect("load task");
    assert!(drained(&url, Duration::from_secs(90)).await, "tansu log:\n{}", tansu.log());

    let accounting = account(&tansu.bootstrap(), &raw, &run, &outcome.acked, Duration::from_secs(60)).await;
    eprintln!(
        "tansu outage: {} requests, {} not acknowledged; {accounting}",
        outcome.requests, outcome.failed_requests
    );
    assert!(
        accounting.lost.is_empty(),
        "acknowledged events lost: {:?}",
        &accounting.lost[..accounting.lost.len().min(20)]
    );
    assert_eq!(
        outcome.failed_requests, 0,
        "with the spool, every request during the outage is acknowledged: {:?}",
        outcome.endings
    );
    assert_eq!(accounting.acked, 1_500);
    gateway.shutdown().await;
}

/// A delivery that misses `enqueue_deadline_ms` is spooled. It used to purge the producer's
/// queue too, after which Tansu refused the idempotent producer's every record
/// (`ProducerFenced`), replays included, so the spool never drained while the gateway ran.
/// Here nearly every batch misses its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_drains_after_deliveries_miss_their_deadline_on_tansu() {
    clickstream_platform::logging::init_logging(false);
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.delivery.enqueue_deadline_ms = 1;
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let url = format!("http://{}", gateway.addr);
    let run = unique("missed");
    let outcome = steady_load(&format!("{url}/v1/batch"), WRITE_KEY, &run, 600, 10, Duration::from_secs(6)).await;
    assert_eq!(outcome.failed_requests, 0, "the spool takes what Kafka does not confirm: {:?}", outcome.endings);
    assert!(drained(&url, Duration::from_secs(60)).await, "the spool never drained; tansu log:\n{}", tansu.log());
    let accounting = account(&tansu.bootstrap(), &raw, &run, &outcome.acked, Duration::from_secs(60)).await;
    eprintln!("missed deadlines: {accounting}");
    assert!(
        accounting.lost.is_empty(),
        "acknowledged events lost: {:?}",
        &accounting.lost[..accounting.lost.len().min(20)]
    );
    assert_eq!(accounting.acked, 600);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_mock_cluster_faults() {
    let (broker, raw, mut config) = on_mock_cluster(3);
    config.delivery.enqueue_deadline_ms = 500;
    let UnderLoad { gateway, url, run, load } = under_load(config, "mock-faults", 1_000, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.fail_next_produces(30).expect("request errors");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Slower than the enqueue deadline: requests purge their queued events into the spool.
    broker.set_round_trip_time(Duration::from_millis(1_500)).expect("rtt");
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.set_round_trip_time(Duration::ZERO).expect("rtt");
    broker.set_available(false).expect("down");
    wait_until_degraded(&url, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.set_available(true).expect("up");
    let outcome = load.await.expect("load task");
    assert!(drained(&url, Duration::from_secs(60)).await);

    let accounting = account(broker.bootstrap_servers(), &raw, &run, &outcome.acked, Duration::from_secs(60)).await;
    eprintln!("mock faults: {} requests, {} not acknowledged; {accounting}", outcome.requests, outcome.failed_requests);
    assert!(
        accounting.lost.is_empty(),
        "acknowledged events lost: {:?}",
        &accounting.lost[..accounting.lost.len().min(20)]
    );
    assert_eq!(outcome.failed_requests, 0, "errors, latency and an outage are absorbed by retries and the spool");
    gateway.shutdown().await;
}

/// With `acks=0` librdkafka reports a record delivered once it is written to the socket, so a
/// broker that stops answering still "confirms" records. The probe must then ask for metadata,
/// or a hung broker would look reachable and nothing would go to the spool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_broker_reads_as_unreachable_even_with_acks_0() {
    let (broker, _raw, mut config) = on_mock_cluster(3);
    config.producer.acks = "0".into();
    // librdkafka refuses idempotence without acks=all.
    config.producer.enable_idempotence = false;
    let UnderLoad { gateway, url, load, .. } = under_load(config, "acks-0", 600, Duration::from_secs(8)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(readiness(&url).await["status"], "ok", "a healthy broker is reachable");
    // Slower than the probe's 2 s metadata timeout, far below librdkafka's socket timeouts:
    // the connection stays up, and only an answer that does not come shows the hang.
    broker.set_round_trip_time(Duration::from_secs(4)).expect("rtt");
    wait_until_degraded(&url, Duration::from_secs(6)).await;
    broker.set_round_trip_time(Duration::ZERO).expect("rtt");
    let outcome = load.await.expect("load task");
    assert!(!outcome.acked.is_empty(), "the load was answered: {:?}", outcome.endings);
    assert!(drained(&url, Duration::from_secs(30)).await, "reachable again once the broker answers");
    gateway.shutdown().await;
}

/// `ack = none` answers before Kafka does: records Kafka then fails to take (here, queued when
/// the broker went away, past `message.timeout.ms`) must reach the spool through the watcher
/// and Kafka after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_none_events_kafka_fails_to_take_are_spooled_and_delivered() {
    let (broker, raw, mut config) = on_mock_cluster(3);
    config.delivery.ack = clickstream_gateway::config::AckMode::None;
    config.producer.message_timeout_ms = 1_000;
    let UnderLoad { gateway, url, run, load } =
        under_load(config, "ack-none-faults", 800, Duration::from_secs(8)).await;
    let admin = gateway.admin_addr.expect("admin listener");
    let spool_watch = tokio::spawn(most_spooled(admin, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Slower than message.timeout.ms, too quick for the probe's 2 s metadata timeout to see:
    // the records queued meanwhile fail after their answer.
    broker.set_round_trip_time(Duration::from_millis(1_500)).expect("rtt");
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.set_round_trip_time(Duration::ZERO).expect("rtt");
    let outcome = load.await.expect("load task");
    let spooled = spool_watch.await.expect("spool watch");
    assert!(drained(&url, Duration::from_secs(60)).await);

    let accounting = account(broker.bootstrap_servers(), &raw, &run, &outcome.acked, Duration::from_secs(60)).await;
    eprintln!("ack=none faults: {} requests, {spooled} events spooled at most at once; {accounting}", outcome.requests);
    assert_eq!(outcome.failed_requests, 0, "ack=none answers at once: {:?}", outcome.endings);
    assert!(spooled > 0, "the slow broker sent events to the spool");
    let scrape = reqwest::get(format!("http://{admin}/metrics")).await.expect("metrics").text().await.expect("text");
    let after_answer = scrape
        .lines()
        .find_map(|line| line.strip_prefix("clickstream_spool_after_answer_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no clickstream_spool_after_answer_total in:\n{scrape}"));
    assert!(after_answer > 0.0, "records failed after their answer and the watcher spooled them");
    assert!(
        accounting.lost.is_empty(),
        "acknowledged events lost: {:?}",
        &accounting.lost[..accounting.lost.len().min(20)]
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_and_none_ack_modes_deliver_everything_on_a_healthy_broker() {
    let tansu = Tansu::start();
    for ack in [clickstream_gateway::config::AckMode::Spool, clickstream_gateway::config::AckMode::None] {
        let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
        create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
        let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
        config.delivery.ack = ack;
        let gateway = clickstream_gateway::start(config).await.expect("gateway");
        let url = format!("http://{}", gateway.addr);
        let run = unique("ack-mode");
        let outcome = steady_load(&format!("{url}/v1/batch"), WRITE_KEY, &run, 300, 10, Duration::from_secs(2)).await;
        assert!(drained(&url, Duration::from_secs(30)).await, "tansu log:\n{}", tansu.log());
        let accounting = account(&tansu.bootstrap(), &raw, &run, &outcome.acked, Duration::from_secs(30)).await;
        eprintln!("ack={ack:?}: {accounting}");
        assert_eq!(accounting.acked, 300, "{:?}", outcome.endings);
        assert!(accounting.lost.is_empty(), "ack={ack:?} lost {:?}", accounting.lost);
        gateway.shutdown().await;
    }
}

/// A record Kafka refuses for good (here a dead letter larger than the producer's
/// `message.max.bytes`) used to be spooled like a passing failure and replayed forever, with
/// every later event queued behind it: the gateway answered 200 and nothing more reached Kafka.
/// Now the request is answered 413 `rejected_by_kafka`, the record is dropped and counted, and
/// the events around it are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_kafka_refuses_for_good_is_answered_413_and_holds_nothing_back() {
    let (broker, raw, mut config) = on_mock_cluster(1);
    config.limits.max_event_bytes = 8_000;
    config.kafka.properties.insert("message.max.bytes".into(), "20000".into());
    let mut too_small = config.clone();
    too_small.limits.max_event_bytes = 30_000;
    let refused = clickstream_gateway::start(too_small).await.expect_err("an event limit over message.max.bytes");
    assert!(refused.to_string().contains("message.max.bytes (20000)"), "{refused}");
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let (url, admin) = (format!("http://{}", gateway.addr), gateway.admin_addr.expect("admin listener"));
    let http = reqwest::Client::new();
    let event = |name: &str, blob: &str| serde_json::json!({"type": "track", "event": name, "anonymousId": "a-1", "properties": {"blob": blob}});
    let post = |events: Vec<serde_json::Value>| {
        http.post(format!("{url}/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&serde_json::json!({ "batch": events }))
            .send()
    };
    // Over limits.max_event_bytes, so it becomes a dead letter of about 40 KB.
    let huge = "x".repeat(40_000);
    let first = post(vec![event("kept-1", ""), event("huge", &huge)]).await.expect("post");
    assert_eq!(first.status(), 413);
    let body: serde_json::Value = first.json().await.expect("JSON");
    assert_eq!(body["error"], "rejected_by_kafka", "{body}");
    let second = post(vec![event("kept-2", "")]).await.expect("post");
    assert_eq!(second.status(), 200, "{}", second.text().await.unwrap_or_default());
    let read =
        clickstream_tests::kafka::read_exactly(broker.bootstrap_servers(), &raw, 2, Duration::from_secs(20)).await;
    let names: Vec<&str> = read.iter().filter_map(|r| r.value["event"].as_str()).collect();
    assert_eq!(names, ["kept-1", "kept-2"]);
    assert!(drained(&url, Duration::from_secs(10)).await, "nothing may wait in the spool");
    let metrics =
        http.get(format!("http://{admin}/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("clickstream_kafka_rejected_total 1"), "{metrics}");
    gateway.shutdown().await;
}
