//! Routing against Tansu: rules, fan-out and dynamic topics decide where events land, read
//! back from Kafka.

use std::collections::BTreeSet;
use std::time::Duration;

use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::{GatewayConfig, GatewayHandle};
use clickstream_tests::kafka::{create_topics, read_exactly, ReadBack};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};
use serde_json::{json, Value};

const READ_TIMEOUT: Duration = Duration::from_secs(30);
const BACKEND_KEY: &str = "backend-write-key";

struct Setup {
    tansu: Tansu,
    /// Unique prefix of this test's topics.
    prefix: String,
    gateway: GatewayHandle,
    url: String,
}

impl Setup {
    fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    async fn read(&self, name: &str, count: usize) -> Vec<ReadBack> {
        read_exactly(&self.tansu.bootstrap(), &self.topic(name), count, READ_TIMEOUT).await
    }

    async fn post(&self, key: &str, batch: Vec<Value>) {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/batch", self.url))
            .basic_auth(key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!((status.as_u16(), body), (200, json!({"success": true})));
    }

    async fn metric(&self, name: &str) -> u64 {
        let admin = self.gateway.admin_addr.expect("the test config opens the admin listener");
        let text = reqwest::get(format!("http://{admin}/metrics")).await.expect("metrics").text().await.expect("text");
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).expect("metric present");
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("metric value")
    }
}

/// Starts Tansu with `raw` (3 partitions), `dlq` and each `(name, partitions)` topic under a
/// unique prefix, and a gateway whose `[routing]` is `routing` with `{p}` replaced by it.
async fn setup(topics: &[(&str, i32)], routing: &str) -> Setup {
    let tansu = Tansu::start();
    let prefix = unique("rt");
    let mut all: Vec<(String, i32)> = vec![(format!("{prefix}.raw"), 3), (format!("{prefix}.dlq"), 1)];
    all.extend(topics.iter().map(|(name, partitions)| (format!("{prefix}.{name}"), *partitions)));
    let specs: Vec<(&str, i32)> = all.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    create_topics(&tansu.bootstrap(), &specs).await;
    let mut config: GatewayConfig =
        gateway_config(&tansu.bootstrap(), &format!("{prefix}.raw"), &format!("{prefix}.dlq"));
    config.sources.push(SourceConfig {
        name: "backend-billing".into(),
        write_key: BACKEND_KEY.into(),
        allowed_origins: vec!["*".into()],
    });
    let routing: Value = serde_json::from_str(&routing.replace("{p}", &prefix)).expect("routing JSON");
    config.routing = serde_json::from_value(routing).expect("routing config");
    let gateway = clickstream_gateway::start(config).await.expect("gateway starts");
    let url = format!("http://{}", gateway.addr);
    Setup { tansu, prefix, gateway, url }
}

fn track(event: &str, user: &str) -> Value {
    json!({"type": "track", "event": event, "userId": user})
}

fn names(messages: &[ReadBack]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m.value["event"].as_str().or(m.value["type"].as_str()).unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_fan_out_to_their_topic_and_raw_and_the_rest_go_to_raw() {
    let s = setup(
        &[("payments", 1)],
        r#"{"rules": [{"name": "payments", "event": ["Order Completed", "Payment *"],
                       "topics": ["{p}.payments", "{p}.raw"]}]}"#,
    )
    .await;
    let batch = vec![track("Order Completed", "u1"), track("Payment Refunded", "u2"), track("Page Viewed", "u3")];
    s.post(WRITE_KEY, batch).await;
    let payments = s.read("payments", 2).await;
    assert_eq!(names(&payments), ["Order Completed", "Payment Refunded"].map(String::from).into());
    let raw = s.read("raw", 3).await;
    assert_eq!(names(&raw), ["Order Completed", "Payment Refunded", "Page Viewed"].map(String::from).into());
    let copies: Vec<&Value> =
        raw.iter().chain(&payments).filter(|m| m.value["event"] == "Order Completed").map(|m| &m.value).collect();
    assert_eq!(copies[0], copies[1], "both copies are the same event, messageId included");
    assert_eq!(payments[0].header("event-type"), Some("track"));
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_match_kind_sends_events_to_its_topic() {
    let s = setup(
        &[("identify", 1), ("checkout", 1), ("backend", 1), ("pro", 1), ("coupon", 1)],
        r#"{"rules": [
            {"name": "by-type", "type": "identify", "topics": ["{p}.identify"]},
            {"name": "by-glob", "event": "Checkout Step ?", "topics": ["{p}.checkout"]},
            {"name": "by-source", "source": "backend-*", "topics": ["{p}.backend"]},
            {"name": "by-value", "property_equals": {"plan": "pro"}, "topics": ["{p}.pro"]},
            {"name": "by-presence", "property": "coupon", "topics": ["{p}.coupon"]}
        ]}"#,
    )
    .await;
    let mut pro = track("Plan Chosen", "u1");
    pro["properties"] = json!({"plan": "pro"});
    let mut free = track("Plan Chosen Free", "u1");
    free["properties"] = json!({"plan": "free"});
    let mut coupon = track("Coupon Applied", "u1");
    coupon["properties"] = json!({"coupon": "SPRING"});
    let identify = json!({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}});
    let batch = vec![identify, track("Checkout Step 2", "u1"), track("Checkout Step 10", "u1"), pro, free, coupon];
    s.post(WRITE_KEY, batch).await;
    s.post(BACKEND_KEY, vec![track("Invoice Paid", "u1")]).await;
    assert_eq!(names(&s.read("identify", 1).await), ["identify".to_owned()].into());
    assert_eq!(names(&s.read("checkout", 1).await), ["Checkout Step 2".to_owned()].into());
    let backend = s.read("backend", 1).await;
    assert_eq!(
        (names(&backend), backend[0].header("source")),
        (["Invoice Paid".to_owned()].into(), Some("backend-billing"))
    );
    assert_eq!(names(&s.read("pro", 1).await), ["Plan Chosen".to_owned()].into());
    assert_eq!(names(&s.read("coupon", 1).await), ["Coupon Applied".to_owned()].into());
    let raw = s.read("raw", 2).await;
    assert_eq!(names(&raw), ["Checkout Step 10", "Plan Chosen Free"].map(String::from).into());
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_go_to_the_historical_topic() {
    let s = setup(
        &[("historical", 1)],
        r#"{"rules": [{"name": "historical", "older_than_secs": 86400, "topics": ["{p}.historical"]}]}"#,
    )
    .await;
    let now = chrono::Utc::now();
    let mut old = track("Imported", "u1");
    old["timestamp"] = json!((now - chrono::Duration::days(30)).to_rfc3339());
    let mut recent = track("Live", "u1");
    recent["timestamp"] = json!((now - chrono::Duration::minutes(5)).to_rfc3339());
    // A device whose clock is a month slow, sending right away: skew correction makes it recent.
    let mut skewed = track("Skewed Clock", "u1");
    skewed["timestamp"] = json!((now - chrono::Duration::days(30)).to_rfc3339());
    skewed["sentAt"] = skewed["timestamp"].clone();
    s.post(WRITE_KEY, vec![old, recent, skewed]).await;
    assert_eq!(names(&s.read("historical", 1).await), ["Imported".to_owned()].into());
    assert_eq!(names(&s.read("raw", 2).await), ["Live", "Skewed Clock"].map(String::from).into());
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_use_allowed_existing_topics_and_fall_back_to_the_default_route() {
    // `{p}.page` is allowed but not created; `{p}.identify` is not allowed.
    let s = setup(
        &[("track", 2)],
        r#"{"allowed_topics": ["{p}.track", "{p}.page"],
            "rules": [{"name": "per-type", "topics": ["{p}.{type}"]}]}"#,
    )
    .await;
    let page = json!({"type": "page", "name": "Home", "anonymousId": "a1"});
    let identify = json!({"type": "identify", "userId": "u1"});
    s.post(WRITE_KEY, vec![track("Product Viewed", "u1"), page, identify]).await;
    assert_eq!(names(&s.read("track", 1).await), ["Product Viewed".to_owned()].into());
    let raw = s.read("raw", 2).await;
    assert_eq!(
        names(&raw),
        ["identify", "page"].map(String::from).into(),
        "events without an `event` are named by type here"
    );
    assert_eq!(s.metric("clickstream_route_fallbacks_total").await, 2);
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_strategies_keep_a_user_on_one_partition_or_spread_events() {
    let s = setup(
        &[("orders", 3)],
        r#"{"rules": [
            {"name": "spread", "event": "Scroll *", "key": "random", "topics": ["{p}.raw"]},
            {"name": "orders", "event": "Order *", "key": "property:order_id", "topics": ["{p}.orders"]}
        ]}"#,
    )
    .await;
    let mut batch: Vec<Value> = (0..12).map(|i| track(&format!("Viewed {i}"), "u1")).collect();
    batch.extend((0..30).map(|i| track(&format!("Scroll {i}"), "u1")));
    batch.extend((0..3).map(|i| json!({"type": "track", "event": "Order Placed", "userId": format!("u{i}"), "properties": {"order_id": 1000 + i}})));
    s.post(WRITE_KEY, batch).await;
    let raw = s.read("raw", 42).await;
    let (visitor, random): (Vec<&ReadBack>, Vec<&ReadBack>) =
        raw.iter().partition(|m| m.value["event"].as_str().is_some_and(|e| e.starts_with("Viewed")));
    assert!(visitor.iter().all(|m| m.key.as_deref() == Some("u1")), "keyed by userId without anonymousId");
    let partitions: BTreeSet<i32> = visitor.iter().map(|m| m.partition).collect();
    assert_eq!(partitions.len(), 1, "one user, one partition: {partitions:?}");
    assert!(random.iter().all(|m| m.key.is_none()));
    let spread: BTreeSet<i32> = random.iter().map(|m| m.partition).collect();
    assert!(spread.len() > 1, "30 random events all landed on partition {spread:?}");
    let orders = s.read("orders", 3).await;
    let keys: BTreeSet<Option<String>> = orders.iter().map(|m| m.key.clone()).collect();
    assert_eq!(keys, ["1000", "1001", "1002"].map(|k| Some(k.to_owned())).into());
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_key_overflows_but_normal_traffic_does_not() {
    let s =
        setup(&[("overflow", 3)], r#"{"overflow": {"topic": "{p}.overflow", "per_key_per_sec": 1, "burst": 5}}"#).await;
    // 40 events from one bot, interleaved with 3 from each of 5 ordinary visitors.
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.push(json!({"type": "track", "event": format!("Bot {i}"), "anonymousId": "bot"}));
        if i % 8 == 0 {
            for visitor in 0..5 {
                batch.push(json!({"type": "track", "event": "Visit", "anonymousId": format!("v{visitor}")}));
            }
        }
    }
    s.post(WRITE_KEY, batch).await;
    let overflow = s.read("overflow", 35).await;
    assert!(overflow.iter().all(|m| m.value["anonymousId"] == "bot" && m.key.as_deref() == Some("bot")));
    let spread: BTreeSet<i32> = overflow.iter().map(|m| m.partition).collect();
    assert!(spread.len() > 1, "overflow events go to random partitions, got only {spread:?}");
    let raw = s.read("raw", 5 + 25).await;
    let bots = raw.iter().filter(|m| m.value["anonymousId"] == "bot").count();
    assert_eq!(bots, 5, "the bot's burst stays on the raw topic");
    assert_eq!(s.metric("clickstream_hot_key_overflows_total").await, 35);
    s.gateway.shutdown().await;
}
