//! Tracking plans against Tansu: each action's effect read back from Kafka, the violations of
//! nested types, required properties and enums, hot reload under an open keep-alive connection,
//! and plans that do not compile refused at start and on reload.

use std::path::Path;
use std::time::Duration;

use clickstream_gateway::config::{PlanAction, SourceConfig};
use clickstream_gateway::{GatewayConfig, GatewayHandle};
use clickstream_tests::kafka::{create_topics, read_exactly, read_until, ReadBack};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, SOURCE_NAME, WRITE_KEY};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

const READ_TIMEOUT: Duration = Duration::from_secs(30);
const DLQ_KEY: &str = "plan-dlq-key";
const DROP_KEY: &str = "plan-drop-key";

/// The plan of every source in these tests: orders need an id, a numeric total, a known
/// currency and products with numeric prices.
fn order_schema(required: &[&str]) -> Value {
    json!({
        "type": "object",
        "required": ["properties"],
        "properties": {"properties": {
            "type": "object",
            "required": required,
            "properties": {
                "order_id": {"type": "string"},
                "total": {"type": "number"},
                "currency": {"enum": ["USD", "EUR"]},
                "products": {"type": "array", "items": {
                    "type": "object", "required": ["sku"],
                    "properties": {"sku": {"type": "string"}, "price": {"type": "number"}}
                }}
            }
        }}
    })
}

fn write_plan(dir: &Path, source: &str, schema: &Value) {
    let folder = dir.join(source);
    std::fs::create_dir_all(&folder).expect("plan folder");
    std::fs::write(folder.join("Order Completed.json"), schema.to_string()).expect("schema");
}

fn order(user: &str, properties: &Value) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": user, "properties": properties})
}

fn good_order(user: &str) -> Value {
    order(user, &json!({"order_id": "o1", "total": 10.5, "currency": "EUR", "products": [{"sku": "a", "price": 1}]}))
}

/// Missing `total`, an unknown currency, and a product with a string price and no sku.
fn bad_order(user: &str) -> Value {
    order(user, &json!({"order_id": "o2", "currency": "GBP", "products": [{"price": "12"}]}))
}

struct Setup {
    tansu: Tansu,
    raw: String,
    dlq: String,
    gateway: GatewayHandle,
    config: GatewayConfig,
    plans: tempfile::TempDir,
}

impl Setup {
    async fn start(action_of: &[(&str, PlanAction)]) -> Self {
        let tansu = Tansu::start();
        let (raw, dlq) = (unique("plan-raw"), unique("plan-dlq"));
        create_topics(&tansu.bootstrap(), &[(raw.as_str(), 1), (dlq.as_str(), 1)]).await;
        let plans = tempfile::tempdir().expect("plans dir");
        let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
        for (name, key) in [("plan-dlq", DLQ_KEY), ("plan-drop", DROP_KEY)] {
            config.sources.push(SourceConfig { name: name.into(), write_key: key.into(), allowed_origins: vec![] });
        }
        for (source, action) in action_of {
            write_plan(plans.path(), source, &order_schema(&["order_id", "total"]));
            config.tracking_plan.actions.insert((*source).to_owned(), *action);
        }
        config.tracking_plan.dir = plans.path().display().to_string();
        let gateway = clickstream_gateway::start(config.clone()).await.expect("gateway starts");
        Self { tansu, raw, dlq, gateway, config, plans }
    }

    async fn post(&self, key: &str, batch: Vec<Value>) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("http://{}/v1/batch", self.gateway.addr))
            .basic_auth(key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .expect("request");
        (response.status().as_u16(), response.json().await.expect("JSON answer"))
    }

    async fn read(&self, topic: &str, count: usize) -> Vec<ReadBack> {
        read_exactly(&self.tansu.bootstrap(), topic, count, READ_TIMEOUT).await
    }

    async fn metrics(&self) -> String {
        let admin = self.gateway.admin_addr.expect("the test config opens the admin listener");
        reqwest::get(format!("http://{admin}/metrics")).await.expect("metrics").text().await.expect("text")
    }
}

fn violation_paths(event: &Value) -> Vec<(String, String)> {
    let violations = event["context"]["tracking_plan"]["violations"].as_array().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    violations.iter().map(|v| (text(&v["path"]), text(&v["schema_path"]))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_keeps_the_event_with_its_nested_required_and_enum_violations() {
    let s = Setup::start(&[(SOURCE_NAME, PlanAction::Allow)]).await;
    let (status, body) = s.post(WRITE_KEY, vec![good_order("u1"), bad_order("u2")]).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let raw = s.read(&s.raw, 2).await;
    let by_user = |user: &str| raw.iter().find(|m| m.value["userId"] == user).map(|m| &m.value).expect("read back");
    assert!(by_user("u1")["context"].get("tracking_plan").is_none(), "a conforming event is untouched");
    let bad = by_user("u2");
    assert_eq!(bad["context"]["tracking_plan"]["schema"], format!("{SOURCE_NAME}/Order Completed.json"));
    let mut paths = violation_paths(bad);
    paths.sort();
    let expected = [
        ("/properties", "/properties/properties/required"),
        ("/properties/currency", "/properties/properties/properties/currency/enum"),
        ("/properties/products/0", "/properties/properties/properties/products/items/required"),
        ("/properties/products/0/price", "/properties/properties/properties/products/items/properties/price/type"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(paths, expected);
    assert_eq!(bad["properties"]["products"][0]["price"], "12", "the event itself is kept as sent");
    assert!(bad["messageId"].is_string() && bad["receivedAt"].is_string(), "and stamped as usual: {bad}");
    let metrics = s.metrics().await;
    let line = metrics.lines().find(|l| l.starts_with("clickstream_tracking_plan_violations_total{"));
    let line = line.expect("violations counted");
    assert!(line.contains(r#"action="allow""#) && line.contains(r#"event="Order Completed""#), "{line}");
    assert!(line.ends_with(" 1"), "{line}");
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_rejects_to_the_dead_letter_topic_and_drop_discards() {
    let s = Setup::start(&[("plan-dlq", PlanAction::Dlq), ("plan-drop", PlanAction::Drop)]).await;
    let (status, body) = s.post(DLQ_KEY, vec![good_order("d1"), bad_order("d2")]).await;
    assert_eq!((status, body["success"].clone()), (200, json!(true)), "{body}");
    let rejected = &body["rejected"][0];
    assert_eq!((&rejected["index"], &rejected["kind"]), (&json!(1), &json!("tracking_plan_violation")), "{body}");
    let reason = rejected["reason"].as_str().expect("reason");
    assert!(reason.starts_with("violates tracking plan plan-dlq/Order Completed.json: "), "{reason}");
    assert!(reason.contains("schema path /properties/properties/properties/currency/enum"), "{reason}");
    let letters = s.read(&s.dlq, 1).await;
    let letter = &letters[0].value;
    assert_eq!((&letter["reasonKind"], &letter["source"]), (&json!("tracking_plan_violation"), &json!("plan-dlq")));
    assert_eq!(letter["reason"], rejected["reason"], "the dead letter says what the client was told");
    assert_eq!(letter["payload"]["userId"], "d2");
    assert!(letter["payload"].get("writeKey").is_none());
    // A request of only violating events is answered 400, and its events still reach the DLQ.
    let (status, body) = s.post(DLQ_KEY, vec![bad_order("d3")]).await;
    assert_eq!((status, &body["error"]), (400, &json!("no_valid_events")), "{body}");
    let letters = s.read(&s.dlq, 2).await;
    assert_eq!(letters[1].value["payload"]["userId"], "d3");

    let (status, body) = s.post(DROP_KEY, vec![bad_order("x1")]).await;
    assert_eq!((status, body), (200, json!({"success": true})), "a dropped event is answered as accepted");
    let (status, _) = s.post(DROP_KEY, vec![good_order("x2")]).await;
    assert_eq!(status, 200);
    // Everything on raw up to the drop source's conforming event: the dropped one is not there.
    let raw =
        read_until(&s.tansu.bootstrap(), &s.raw, READ_TIMEOUT, |m| m.iter().any(|m| m.value["userId"] == "x2")).await;
    let users: Vec<&str> = raw.iter().filter_map(|m| m.value["userId"].as_str()).collect();
    assert_eq!(users, ["d1", "x2"]);
    let metrics = s.metrics().await;
    let counted = |action: &str| {
        metrics.lines().any(|l| {
            l.starts_with("clickstream_tracking_plan_violations_total{") && l.contains(&format!("action=\"{action}\""))
        })
    };
    assert!(counted("dlq") && counted("drop"), "{metrics}");
    s.gateway.shutdown().await;
}

/// One HTTP/1.1 keep-alive connection, so a test knows its requests share it.
struct KeepAlive {
    stream: BufReader<TcpStream>,
}

impl KeepAlive {
    async fn open(addr: std::net::SocketAddr) -> Self {
        Self { stream: BufReader::new(TcpStream::connect(addr).await.expect("connect")) }
    }

    async fn post(&mut self, event: &Value) -> (u16, Value) {
        let body = json!({"batch": [event], "writeKey": WRITE_KEY}).to_string();
        let request = format!(
            "POST /v1/batch HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await.expect("write");
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).await.expect("status line");
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.expect("header");
            if line.trim().is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            assert!(!lower.starts_with("connection: close"), "the gateway keeps the connection open");
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON answer"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_reload_under_an_open_connection_and_a_broken_one_keeps_the_running_plan() {
    let s = Setup::start(&[(SOURCE_NAME, PlanAction::Dlq)]).await;
    let mut connection = KeepAlive::open(s.gateway.addr).await;
    let no_coupon = good_order("k1");
    assert_eq!(connection.post(&no_coupon).await, (200, json!({"success": true})));

    write_plan(s.plans.path(), SOURCE_NAME, &order_schema(&["order_id", "total", "coupon"]));
    let reloaded = s.gateway.reloader().reload(s.config.clone()).await.expect("the new plan compiles");
    assert_eq!(reloaded.plans, 1);
    let (status, body) = connection.post(&no_coupon).await;
    assert_eq!(status, 400, "the same connection now gets the new plan: {body}");
    assert!(body["rejected"][0]["reason"].as_str().unwrap_or_default().contains("\"coupon\" is a required"), "{body}");

    let broken = json!({"properties": {"properties": {"properties": {"total": {"type": "numbr"}}}}});
    write_plan(s.plans.path(), SOURCE_NAME, &broken);
    let error = s.gateway.reloader().reload(s.config.clone()).await.expect_err("a plan that does not compile");
    let message = error.to_string();
    assert!(message.starts_with("invalid tracking plan") && message.contains("Order Completed.json"), "{message}");
    let (status, _) = connection.post(&no_coupon).await;
    assert_eq!(status, 400, "the running plan (coupon required) is kept");
    let mut with_coupon = good_order("k2");
    with_coupon["properties"]["coupon"] = json!("SPRING");
    assert_eq!(connection.post(&with_coupon).await, (200, json!({"success": true})));
    let raw = s.read(&s.raw, 2).await;
    assert_eq!(raw.iter().map(|m| m.value["userId"].clone()).collect::<Vec<_>>(), [json!("k1"), json!("k2")]);
    let metrics = s.metrics().await;
    assert!(metrics.lines().any(|l| l == "clickstream_tracking_plan_reload_failures_total 1"), "{metrics}");
    s.gateway.shutdown().await;
}

#[tokio::test]
async fn a_plan_that_does_not_compile_is_refused_at_start() {
    let plans = tempfile::tempdir().expect("plans dir");
    write_plan(plans.path(), SOURCE_NAME, &json!({"properties": {"properties": {"pattern": "(unclosed"}}}));
    // No broker: the plan is checked before Kafka is asked anything.
    let mut config = gateway_config("127.0.0.1:9", "events.raw", "events.dlq");
    config.tracking_plan.dir = plans.path().display().to_string();
    let Err(error) = clickstream_gateway::start(config).await else { panic!("a broken plan must be refused") };
    let message = format!("{error:#}");
    assert!(message.contains("invalid tracking plan"), "{message}");
    assert!(message.contains(&format!("{SOURCE_NAME}/Order Completed.json is not a valid JSON Schema")), "{message}");
}
