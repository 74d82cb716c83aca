//! Routing in the handler, without a broker: records per route, events counted once however
//! many topics they fan out to, hot keys, a dynamic topic checked against known topics, and a
//! config that does not compile refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::sink::{MemorySink, Record};
use clickstream_gateway::{app, App, AppState, GatewayConfig};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

const KEY: &str = "wk_routing";

fn setup(routing: Value) -> (App, AppState, Arc<MemorySink>) {
    let mut config = GatewayConfig { routing: serde_json::from_value(routing).expect("routing"), ..Default::default() };
    config.sources.push(SourceConfig { name: "web".into(), write_key: KEY.into(), allowed_origins: vec!["*".into()] });
    let sink = Arc::new(MemorySink::default());
    let state = AppState::new(config, sink.clone()).expect("valid routing");
    (app(state.clone()), state, sink)
}

async fn post_batch(app: &App, batch: Value) -> (u16, Value) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/batch")
        .header("x-write-key", KEY)
        .body(Full::new(Bytes::from(json!({ "batch": batch }).to_string())))
        .expect("request");
    let peer: SocketAddr = "198.51.100.7:4000".parse().expect("addr");
    let response = app.handle(request, peer).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).expect("json"))
}

/// Reads the counters the admin listener would serve (no socket here).
fn metric(state: &AppState, name: &str) -> u64 {
    let text = state.metrics.telemetry().render_prometheus();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).expect("metric");
    line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value")
}

fn topics_of(records: &[Record]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            let event: Value = serde_json::from_slice(&r.payload).expect("json");
            (r.topic.clone(), event["event"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn fan_out_makes_a_record_per_topic_but_counts_the_event_once() {
    let (app, state, sink) = setup(json!({"rules": [
        {"name": "payments", "event": "Order *", "topics": ["events.payments", "events.raw"]}
    ]}));
    let batch = json!([
        {"type": "track", "event": "Order Completed", "userId": "u1"},
        {"type": "track", "event": "Page Viewed", "anonymousId": "a1"}
    ]);
    assert_eq!(post_batch(&app, batch).await, (200, json!({"success": true})));
    let records = sink.records();
    assert_eq!(
        topics_of(&records),
        [("events.payments", "Order Completed"), ("events.raw", "Order Completed"), ("events.raw", "Page Viewed")]
            .map(|(t, e)| (t.to_owned(), e.to_owned()))
    );
    assert_eq!(records[0].payload, records[1].payload, "one event, two copies");
    assert_eq!((records[0].key.as_deref(), records[0].partition), (Some("u1"), None));
    assert_eq!(metric(&state, "clickstream_events_accepted_total"), 2);
}

#[tokio::test]
async fn without_rules_every_event_goes_to_the_raw_topic_keyed_by_visitor() {
    let (app, _, sink) = setup(json!({}));
    let batch = json!([{"type": "track", "event": "A", "anonymousId": "a1", "userId": "u1"}, {"type": "identify", "userId": "u2"}]);
    assert_eq!(post_batch(&app, batch).await.0, 200);
    let keyed: Vec<(String, Option<String>, Option<i32>)> =
        sink.records().into_iter().map(|r| (r.topic, r.key, r.partition)).collect();
    assert_eq!(
        keyed,
        [
            ("events.raw".to_owned(), Some("a1".to_owned()), None),
            ("events.raw".to_owned(), Some("u2".to_owned()), None)
        ]
    );
}

#[tokio::test]
async fn a_dynamic_topic_is_used_only_once_it_is_known_to_exist() {
    let (app, state, sink) = setup(json!({
        "allowed_topics": ["events.*"],
        "rules": [{"name": "per-source", "topics": ["events.{source}"], "key": "random"}]
    }));
    let event = json!([{"type": "track", "event": "E", "userId": "u1"}]);
    assert_eq!(post_batch(&app, event.clone()).await.0, 200);
    state.routing.catalog().replace(HashMap::from([("events.web".to_owned(), 4)]));
    assert_eq!(post_batch(&app, event).await.0, 200);
    let records = sink.records();
    assert_eq!((records[0].topic.as_str(), records[0].key.as_deref()), ("events.raw", Some("u1")), "fallback");
    assert_eq!((records[1].topic.as_str(), records[1].key.as_deref()), ("events.web", None));
    assert!(records[1].partition.is_some_and(|p| (0..4).contains(&p)), "a random partition of the 4");
    assert_eq!(metric(&state, "clickstream_route_fallbacks_total"), 1);
}

#[tokio::test]
async fn a_hot_key_overflows_unless_its_route_turns_overflow_off() {
    let (app, state, sink) = setup(json!({
        "overflow": {"topic": "events.overflow", "per_key_per_sec": 1, "burst": 3},
        "rules": [{"name": "payments", "event": "Order *", "topics": ["events.payments"], "overflow": false}]
    }));
    state.routing.catalog().replace(HashMap::from([("events.overflow".to_owned(), 2)]));
    let flood: Vec<Value> = (0..10)
        .flat_map(|i| {
            [
                json!({"type": "track", "event": format!("Click {i}"), "anonymousId": "bot"}),
                json!({"type": "track", "event": "Order Completed", "anonymousId": "bot"}),
            ]
        })
        .collect();
    assert_eq!(post_batch(&app, Value::Array(flood)).await.0, 200);
    let records = sink.records();
    let on = |topic: &str| records.iter().filter(|r| r.topic == topic).count();
    assert_eq!((on("events.raw"), on("events.overflow"), on("events.payments")), (3, 7, 10));
    let overflowed = records.iter().filter(|r| r.topic == "events.overflow");
    assert!(overflowed.clone().all(|r| r.key.as_deref() == Some("bot") && r.partition.is_some_and(|p| p < 2)));
    assert_eq!(metric(&state, "clickstream_hot_key_overflows_total"), 7);
}

#[tokio::test]
async fn property_rules_and_property_keys_read_the_spliced_events_properties() {
    let (app, _, sink) = setup(json!({"rules": [
        {"name": "eur", "property_equals": {"currency": "EUR", "total": "10.5"}, "topics": ["events.eur"],
         "key": "property:order_id"}
    ]}));
    let batch = json!([
        {"type": "track", "event": "Order Completed", "userId": "u1",
         "properties": {"currency": "EUR", "total": 10.5, "order_id": 77}},
        {"type": "track", "event": "Order Completed", "userId": "u2", "properties": {"currency": "USD", "total": 10.5}}
    ]);
    assert_eq!(post_batch(&app, batch).await.0, 200);
    let routed: Vec<(String, Option<String>)> = sink.records().into_iter().map(|r| (r.topic, r.key)).collect();
    assert_eq!(
        routed,
        [("events.eur".to_owned(), Some("77".to_owned())), ("events.raw".to_owned(), Some("u2".to_owned()))]
    );
}

#[test]
fn a_routing_config_that_does_not_compile_is_refused_not_replaced() {
    let routing = json!({"rules": [{"event": "Order Completed", "topics": ["payments topic!"]}]});
    let config = GatewayConfig { routing: serde_json::from_value(routing).expect("routing"), ..Default::default() };
    let error = AppState::new(config, Arc::new(MemorySink::default())).expect_err("a topic name with a space");
    let message = error.to_string();
    assert!(message.starts_with("invalid routing config"), "{message}");
    assert!(message.contains("payments topic!"), "names the bad topic: {message}");
}
