//! The pixel and PostHog adapters through the whole handler (no socket, a memory sink): what
//! reaches Kafka, with which headers, and what malformed input gets back.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::record::Record;
use clickstream_gateway::sink::MemorySink;
use clickstream_gateway::{app, App, AppState, GatewayConfig};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::{json, Value};

const KEY: &str = "wk_proto";
const DLQ: &str = "events.dlq";

fn setup() -> (App, Arc<MemorySink>) {
    let mut config = GatewayConfig::default();
    config.http.public_metrics = true;
    config.sources.push(SourceConfig { name: "mail".into(), write_key: KEY.into(), allowed_origins: vec!["*".into()] });
    let sink = Arc::new(MemorySink::default());
    (app(AppState::new(config, sink.clone()).expect("valid routing")), sink)
}

fn peer() -> SocketAddr {
    "198.51.100.7:40000".parse().expect("addr")
}

async fn call(app: &App, request: Request<Full<Bytes>>) -> (Response<()>, Bytes) {
    let (parts, body) = app.handle(request, peer()).await.into_parts();
    (Response::from_parts(parts, ()), body.collect().await.expect("body").to_bytes())
}

fn header<'a>(record: &'a Record, name: &str) -> Option<&'a str> {
    record.headers.pairs().find(|(n, _)| *n == name).map(|(_, v)| v)
}

fn json_of(record: &Record) -> Value {
    serde_json::from_slice(&record.payload).expect("json record")
}

fn pixel(kind: &str, data: &str) -> Request<Full<Bytes>> {
    Request::get(format!("/v1/pixel/{kind}?data={data}")).body(Full::default()).expect("request")
}

fn b64(value: &Value) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(value.to_string());
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn metric_line(app: &App, prefix: &str) -> String {
    let (_, body) = call(app, Request::get("/metrics").body(Full::default()).expect("request")).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines().filter(|l| l.starts_with(prefix)).collect::<Vec<_>>().join("\n")
}

fn assert_gif(response: &Response<()>, body: &[u8]) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert!(response.headers()["cache-control"].to_str().expect("ascii").contains("no-store"));
    assert!(body.starts_with(b"GIF89a"), "a GIF, got {body:?}");
}

#[tokio::test]
async fn a_pixel_event_arrives_as_its_type_with_the_pixel_protocol_header() {
    let (app, sink) = setup();
    let event = json!({"writeKey": KEY, "userId": "u1", "event": "Email Opened", "properties": {"campaign": "may"}});
    let (response, body) = call(&app, pixel("track", &b64(&event))).await;
    assert_gif(&response, &body);
    let records = sink.records();
    assert_eq!(records.len(), 1);
    let stored = json_of(&records[0]);
    assert_eq!((stored["type"].as_str(), stored["event"].as_str()), (Some("track"), Some("Email Opened")));
    assert_eq!(stored["properties"]["campaign"], "may");
    assert!(stored.get("writeKey").is_none());
    assert_eq!(stored["context"]["ip"], "198.51.100.7");
    assert_eq!(header(&records[0], "protocol"), Some("pixel"));
    assert_eq!(header(&records[0], "source"), Some("mail"));
    assert_eq!(header(&records[0], "event-type"), Some("track"));
}

#[tokio::test]
async fn a_bad_pixel_still_answers_the_gif_and_goes_to_the_dlq_when_its_key_is_known() {
    let (app, sink) = setup();
    // Valid JSON, invalid event: no identity.
    let (response, body) = call(&app, pixel("track", &b64(&json!({"writeKey": KEY, "event": "x"})))).await;
    assert_gif(&response, &body);
    // JSON cut short, its key still readable.
    let broken = base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"writeKey":"{KEY}","userId":"#));
    let (response, body) = call(&app, pixel("page", &broken)).await;
    assert_gif(&response, &body);
    let letters: Vec<Value> = sink.records().iter().filter(|r| r.topic == DLQ).map(json_of).collect();
    assert_eq!(letters.len(), 2, "{letters:#?}");
    assert_eq!(letters[0]["reasonKind"], "missing_identity");
    assert_eq!(letters[0]["source"], "mail");
    assert_eq!(letters[1]["reasonKind"], "invalid_json");
    assert!(letters[1]["reason"].as_str().expect("reason").contains("`data`"));
    assert!(sink.records().iter().all(|r| header(r, "protocol") == Some("pixel")));

    // No key to be had: only metrics count these.
    for data in ["%%%", "bm90IGpzb24", ""] {
        let (response, body) = call(&app, pixel("track", data)).await;
        assert_gif(&response, &body);
    }
    let unknown = call(&app, pixel("track", &b64(&json!({"writeKey": "nope", "userId": "u", "event": "e"})))).await;
    assert_gif(&unknown.0, &unknown.1);
    assert_eq!(sink.records().len(), 2, "nothing more was written");
    let dropped = metric_line(&app, "clickstream_pixel_dropped").await;
    assert!(dropped.contains("missing_write_key") && dropped.contains("unknown_write_key"), "{dropped}");
    let rejected = metric_line(&app, "clickstream_events_rejected").await;
    for reason in ["invalid_base64", "missing_data", "missing_identity", "invalid_json"] {
        assert!(rejected.contains(reason), "{reason} not counted:\n{rejected}");
    }
}

fn posthog(path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path).header("content-type", content_type).body(Full::new(body.into())).expect("request")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn posthog_batches_arrive_mapped_with_rejections_by_position() {
    let (app, sink) = setup();
    let batch = json!([
        {"event": "$pageview", "distinct_id": "d1", "properties": {"token": KEY, "$device_id": "d1",
            "$current_url": "https://shop.example/a"}},
        {"event": "no identity", "properties": {"token": KEY}},
        {"event": "Bought", "distinct_id": "user-1", "uuid": "0190e9d2-0000-7000-8000-000000000001",
            "properties": {"token": KEY, "price": 9.5}},
    ]);
    let request = posthog("/e/?compression=gzip-js&ver=1.449.2", "text/plain", gzip(batch.to_string().as_bytes()));
    let (response, body) = call(&app, request).await;
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["status"], 1);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["kind"], "missing_identity");
    let records = sink.records();
    let events: Vec<Value> = records.iter().filter(|r| r.topic != DLQ).map(json_of).collect();
    assert_eq!(events.len(), 2);
    assert_eq!((events[0]["type"].as_str(), events[0]["anonymousId"].as_str()), (Some("page"), Some("d1")));
    assert_eq!(events[0]["context"]["page"]["url"], "https://shop.example/a");
    assert_eq!(events[1]["messageId"], "0190e9d2-0000-7000-8000-000000000001");
    assert_eq!(events[1]["properties"]["price"], 9.5);
    let letter = records.iter().find(|r| r.topic == DLQ).map(json_of).expect("dead letter");
    assert_eq!((letter["index"].as_u64(), letter["reasonKind"].as_str()), (Some(1), Some("missing_identity")));
    assert!(records.iter().all(|r| header(r, "protocol") == Some("posthog")));
}

#[tokio::test]
async fn malformed_posthog_requests_get_a_4xx_naming_the_problem_and_the_gateway_stays_up() {
    let (app, sink) = setup();
    let ok = json!({"event": "e", "distinct_id": "d", "properties": {"token": KEY}}).to_string();
    let cases: Vec<(Request<Full<Bytes>>, u16, &str)> = vec![
        (posthog("/e/", "application/json", "{not json"), 400, "invalid_json"),
        (posthog("/e/?compression=gzip-js", "text/plain", "not gzip"), 400, "bad_compression"),
        (posthog("/e/?compression=lz64", "text/plain", "x"), 415, "unsupported_compression"),
        (posthog("/e/", "application/x-www-form-urlencoded", "data=%%%"), 400, "bad_shape"),
        (posthog("/batch/", "application/json", r#"{"batch": 5}"#), 400, "bad_shape"),
        (posthog("/e/", "application/json", r#"{"event": "e", "distinct_id": "d"}"#), 401, "missing_write_key"),
        (posthog("/capture/", "application/json", ok.replace(KEY, "nope")), 401, "unknown_write_key"),
        (
            posthog("/e/", "application/json", format!(r#"[{{"properties":{{"token":"{KEY}"}}}}]"#)),
            400,
            "no_valid_events",
        ),
    ];
    for (request, status, kind) in cases {
        let path = request.uri().to_string();
        let (response, body) = call(&app, request).await;
        let answer: Value = serde_json::from_slice(&body).expect("json error body");
        assert_eq!((response.status().as_u16(), answer["error"].as_str()), (status, Some(kind)), "{path}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(sink.records().is_empty());
    let (response, _) = call(&app, posthog("/i/v0/e/", "application/json", ok)).await;
    assert_eq!(response.status(), 200, "still serving");
}

#[tokio::test]
async fn posthog_js_start_up_requests_get_an_empty_config() {
    let (app, _) = setup();
    let (response, body) = call(&app, posthog("/flags/?v=2&config=true", "application/json", "{}")).await;
    assert_eq!(response.status(), 200);
    let flags: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((flags["flags"].clone(), flags["sessionRecording"].clone()), (json!({}), json!(false)));
    let get = |path: &str| Request::get(path).body(Full::default()).expect("request");
    let (_, body) = call(&app, get("/array/phc_x/config")).await;
    let config: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((config["token"].as_str(), config["hasFeatureFlags"].as_bool()), (Some("phc_x"), Some(false)));
    let (response, body) = call(&app, get("/array/phc_x/config.js")).await;
    assert_eq!(response.headers()["content-type"], "application/javascript");
    assert!(String::from_utf8_lossy(&body).contains(r#"_POSTHOG_REMOTE_CONFIG["phc_x"]"#));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the query holds, the pixel answers the GIF and writes at most one record.
    #[test]
    fn any_pixel_query_answers_the_gif(data in "[A-Za-z0-9+/=%_-]{0,80}", kind in "track|page|identify|group|alias|screen") {
        let (app, sink) = setup();
        let (response, body) = runtime().block_on(call(&app, pixel(&kind, &data)));
        prop_assert_eq!(response.status(), 200);
        prop_assert!(body.starts_with(b"GIF89a"));
        prop_assert!(sink.records().len() <= 1);
    }

    /// Any JSON value posted as a PostHog body gets a JSON answer, never a 5xx.
    #[test]
    fn any_posthog_body_gets_a_json_answer(
        event in prop::option::of("[$a-z]{0,12}"),
        distinct in prop::option::of(prop_oneof![Just(json!("d")), any::<i64>().prop_map(|n| json!(n)), Just(json!(null))]),
        properties in prop::option::of(prop_oneof![Just(json!({})), Just(json!([1])), Just(json!({"alias": "a", "$group_key": 1}))]),
        batch in any::<bool>(),
    ) {
        let mut value = json!({"api_key": KEY});
        if let Some(event) = event { value["event"] = json!(event); }
        if let Some(distinct) = distinct { value["distinct_id"] = distinct; }
        if let Some(properties) = properties { value["properties"] = properties; }
        let body = if batch { json!({"api_key": KEY, "batch": [value]}) } else { value };
        let (app, _) = setup();
        let (response, bytes) = runtime().block_on(call(&app, posthog("/batch/", "application/json", body.to_string())));
        prop_assert!(response.status().as_u16() < 500, "{}", response.status());
        prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
    }
}
