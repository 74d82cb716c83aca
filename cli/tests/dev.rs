//! `clickstream dev` as a newcomer runs it: the binary, its embedded broker, the HTTP API docs' curl,
//! the read-back from Kafka, and the broker-down switch on the admin port.

use std::time::Duration;

use clickstream_tests::dev::DevProcess;
use clickstream_tests::kafka::read_exactly;
use serde_json::{json, Value};

fn start_dev() -> DevProcess {
    let mut dev = DevProcess::start(env!("CARGO_BIN_EXE_clickstream"), &["--no-demo"]);
    dev.wait_for("the in-memory warning", Duration::from_secs(10), |l| l.contains("IN MEMORY ONLY"));
    dev
}

async fn post_example_batch(client: &reqwest::Client, dev: &DevProcess, message_id: &str) -> reqwest::Response {
    client
        .post(format!("{}/v1/batch", dev.gateway))
        .basic_auth("demo-write-key", Some(""))
        .json(&json!({"batch": [{"type": "track", "event": "Product Viewed", "anonymousId": "a1", "messageId": message_id,
            "properties": {"product_id": "p1"}, "timestamp": "2026-01-01T00:00:00Z"}], "sentAt": "2026-01-01T00:00:30Z"}))
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_the_http_api_example_and_switches_its_broker() {
    let dev = start_dev();
    let client = reqwest::Client::new();
    assert_eq!(post_example_batch(&client, &dev, "example-1").await.status(), 200);
    let messages = read_exactly(&dev.bootstrap, "events.raw", 1, Duration::from_secs(30)).await;
    let event: &Value = &messages[0].value;
    assert_eq!(event["messageId"], "example-1");
    assert!(event["receivedAt"].is_string());
    let received =
        chrono::DateTime::parse_from_rfc3339(event["receivedAt"].as_str().unwrap_or_default()).expect("receivedAt");
    let timestamp =
        chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap_or_default()).expect("timestamp");
    assert_eq!(received - timestamp, chrono::Duration::seconds(30), "timestamp corrected by sentAt");

    // The enricher dev runs joins the sample catalog and opens a session (3.5–4.5 s after the
    // raw event on the test machine).
    let started = std::time::Instant::now();
    let enriched = read_exactly(&dev.bootstrap, "events.enriched", 1, Duration::from_secs(30)).await;
    let waited = started.elapsed();
    let enrichment = &enriched[0].value["enrichment"];
    let catalog_p1: Value =
        serde_json::from_str(include_str!("../../data/products.jsonl").lines().next().expect("catalog has p1"))
            .expect("json");
    assert_eq!(enriched[0].value["messageId"], "example-1");
    assert_eq!(enrichment["product"]["name"], catalog_p1["name"]);
    assert_eq!(enrichment["product"]["price"], catalog_p1["price"]);
    assert_eq!(enrichment["session"]["sequence"], 1);
    assert!(enrichment["session"]["id"].as_str().is_some_and(|id| id.len() == 16), "{enrichment}");
    println!("enriched event read back {waited:?} after the raw one");

    // With the broker down, events are acknowledged from the disk spool and readiness says so.
    let down = client.post(format!("{}/dev/broker/down", dev.admin)).send().await.expect("admin");
    assert_eq!(down.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ready = client.get(format!("{}/readyz", dev.gateway)).send().await.expect("readyz");
        assert_eq!(ready.status(), 200, "spooling keeps the gateway ready");
        if ready.json::<Value>().await.expect("json")["status"] == "degraded" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not degraded 15 s after broker down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 0..5 {
        let response = post_example_batch(&client, &dev, &format!("during-{n}")).await;
        assert_eq!(response.status(), 200, "spooled while the broker is down");
    }
    let metrics =
        client.get(format!("{}/metrics", dev.gateway)).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.lines().any(|l| l.starts_with("clickstream_spool_events ") && !l.ends_with(" 0")), "{metrics}");

    assert_eq!(client.post(format!("{}/dev/broker/up", dev.admin)).send().await.expect("admin").status(), 200);
    assert_eq!(post_example_batch(&client, &dev, "example-2").await.status(), 200);
    // The spool replays in order, so everything arrives: one before, five during, one after.
    let messages = read_exactly(&dev.bootstrap, "events.raw", 7, Duration::from_secs(40)).await;
    let ids: Vec<&str> = messages.iter().map(|m| m.value["messageId"].as_str().unwrap_or_default()).collect();
    assert_eq!(ids, ["example-1", "during-0", "during-1", "during-2", "during-3", "during-4", "example-2"]);
}
