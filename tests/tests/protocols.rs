//! The pixel and PostHog protocols end to end: a plain HTTP client and PostHog's own Python
//! SDK send to a gateway on Tansu, and the events are read back from Kafka.

use std::time::Duration;

use base64::Engine as _;
use clickstream_tests::kafka::{create_topics, read_exactly};
use clickstream_tests::python_sdk::run_sdk_script;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, SOURCE_NAME, WRITE_KEY};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pixel_from_a_plain_http_client_arrives_and_a_broken_one_is_dead_lettered() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 1), (&dlq, 1)]).await;
    let gateway = clickstream_gateway::start(gateway_config(&tansu.bootstrap(), &raw, &dlq)).await.expect("gateway");
    let client = reqwest::Client::new();
    let base = format!("http://{}/v1/pixel", gateway.addr);
    let event =
        json!({"writeKey": WRITE_KEY, "userId": "reader-1", "event": "Email Opened", "properties": {"issue": 7}});
    let data = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    let response = client.get(format!("{base}/track")).query(&[("data", &data)]).send().await.expect("pixel");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert_eq!(response.headers()["cache-control"], "no-cache, no-store, must-revalidate, max-age=0");
    assert!(response.bytes().await.expect("gif").starts_with(b"GIF89a"));
    let broken = base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"writeKey":"{WRITE_KEY}","event":"#));
    let response = client.get(format!("{base}/page")).query(&[("data", &broken)]).send().await.expect("pixel");
    assert_eq!(
        (response.status().as_u16(), response.headers()["content-type"].to_str().ok()),
        (200, Some("image/gif"))
    );

    let [opened] = <[_; 1]>::try_from(read_exactly(&tansu.bootstrap(), &raw, 1, Duration::from_secs(30)).await)
        .expect("one event");
    assert_eq!(opened.value["type"], "track");
    assert_eq!(opened.value["userId"], "reader-1");
    assert_eq!(opened.value["properties"]["issue"], 7);
    assert_eq!(opened.value["context"]["ip"], "127.0.0.1");
    assert_eq!(opened.header("protocol"), Some("pixel"));
    assert_eq!(opened.header("source"), Some(SOURCE_NAME));
    let [letter] = <[_; 1]>::try_from(read_exactly(&tansu.bootstrap(), &dlq, 1, Duration::from_secs(30)).await)
        .expect("one dead letter");
    assert_eq!(letter.value["reasonKind"], "invalid_json");
    assert_eq!(letter.value["source"], SOURCE_NAME);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posthogs_python_sdk_events_arrive_mapped() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let gateway = clickstream_gateway::start(gateway_config(&tansu.bootstrap(), &raw, &dlq)).await.expect("gateway");
    let run = unique("run");
    let host = format!("http://{}", gateway.addr);
    run_sdk_script(
        "PostHog's Python SDK",
        "posthog",
        "posthog-python.py",
        vec![host, WRITE_KEY.to_owned(), run.clone()],
    )
    .await;

    let messages = read_exactly(&tansu.bootstrap(), &raw, 4, Duration::from_secs(30)).await;
    assert!(messages.iter().all(|m| m.header("protocol") == Some("posthog")), "{messages:#?}");
    let by_type = |kind: &str| {
        messages.iter().find(|m| m.value["type"] == kind).unwrap_or_else(|| panic!("no {kind} in {messages:#?}"))
    };
    let user = format!("user-{run}");
    let order = &messages.iter().find(|m| m.value["event"] == "Order Completed").expect("order").value;
    let sets: Vec<_> = messages.iter().filter(|m| m.value["event"] == "$set").collect();
    assert_eq!(sets.len(), 1, "`$set` is a track event, its person properties in context.traits");
    assert_eq!(sets[0].value["context"]["traits"]["email"], "py@example.com");
    assert_eq!(order["userId"], user);
    assert_eq!(order["properties"]["order_id"], format!("o-{run}"));
    assert_eq!(order["properties"]["total"], 42.5);
    assert_eq!(order["properties"]["$groups"]["company"], format!("acme-{run}"));
    assert_eq!(order["context"]["library"]["name"], "posthog-python");
    assert!(order["messageId"].as_str().is_some_and(|id| id.len() == 36), "the SDK's uuid is the messageId");
    assert!(order["sentAt"].is_string() && order["receivedAt"].is_string() && order["timestamp"].is_string());
    assert!(order["properties"].get("token").is_none() && order.get("api_key").is_none());
    let group = &by_type("group").value;
    assert_eq!(
        (group["groupId"].as_str(), group["userId"].as_str()),
        (Some(format!("acme-{run}").as_str()), Some(user.as_str()))
    );
    assert_eq!(group["traits"]["plan"], "enterprise");
    let alias = &by_type("alias").value;
    assert_eq!(
        (alias["userId"].as_str(), alias["previousId"].as_str()),
        (Some(user.as_str()), Some(format!("anon-{run}").as_str()))
    );
    gateway.shutdown().await;
}
