//! Dedup, rate limits and hostile bodies, through the handler with an in-memory sink.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::sink::MemorySink;
use clickstream_gateway::{app, App, AppState, GatewayConfig};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::{json, Value};

const KEY: &str = "wk_protect";

fn setup(tweak: impl FnOnce(&mut GatewayConfig)) -> (App, Arc<MemorySink>) {
    let mut config = GatewayConfig::default();
    config.sources.push(SourceConfig { name: "site".into(), write_key: KEY.into(), allowed_origins: vec!["*".into()] });
    tweak(&mut config);
    let sink = Arc::new(MemorySink::default());
    (app(AppState::new(config, sink.clone()).expect("valid routing")), sink)
}

async fn send(app: &App, body: Vec<u8>, encoding: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = Request::builder().method(Method::POST).uri("/v1/batch").header("x-write-key", KEY);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let peer: SocketAddr = "198.51.100.7:4000".parse().expect("addr");
    let response = app.handle(request.body(Full::from(body)).expect("request"), peer).await;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, retry_after, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn batch(id: &str) -> Vec<u8> {
    json!({"batch": [{"type": "track", "event": "E", "anonymousId": "a", "messageId": id}]}).to_string().into_bytes()
}

#[tokio::test]
async fn retried_duplicates_are_dropped_but_a_retry_after_failure_is_not() {
    // No admin listener without a socket: the counters are read from the public page.
    let (app, sink) = setup(|c| c.http.public_metrics = true);
    sink.set_down(true);
    assert_eq!(send(&app, batch("m-1"), None).await.0, 503, "first attempt fails");
    sink.set_down(false);
    assert_eq!(send(&app, batch("m-1"), None).await.0, 200, "the retry goes through");
    assert_eq!(sink.records().len(), 1, "and is delivered, because the failed attempt never entered the cache");
    let (status, _, body) = send(&app, batch("m-1"), None).await;
    assert_eq!((status, body), (200, json!({"success": true})), "a duplicate still reads as success");
    assert_eq!(sink.records().len(), 1, "but is not delivered again");
    let metrics = app
        .handle(
            Request::get("/metrics").body(Full::<Bytes>::default()).expect("req"),
            "127.0.0.1:1".parse().expect("addr"),
        )
        .await;
    let text = String::from_utf8(metrics.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
    assert!(text.contains("clickstream_dedup_drops_total 1"), "{text}");
}

#[tokio::test]
async fn per_ip_rate_limit_answers_429_with_retry_after() {
    let (app, _) = setup(|c| {
        c.rate_limit.per_ip_per_sec = 1;
        c.rate_limit.per_ip_burst = 1;
    });
    assert_eq!(send(&app, batch("r-1"), None).await.0, 200);
    let (status, retry_after, body) = send(&app, batch("r-2"), None).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("rate_limited")));
    assert!(retry_after.and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
}

#[tokio::test]
async fn per_write_key_rate_limit_answers_429() {
    let (app, _) = setup(|c| {
        c.rate_limit.per_write_key_per_sec = 2;
        c.rate_limit.per_write_key_burst = 2;
    });
    let mut statuses = Vec::new();
    for n in 0..4 {
        statuses.push(send(&app, batch(&format!("k-{n}")), None).await.0);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}

/// A batch of one valid event and `invalid` empty objects.
fn with_invalid(invalid: usize) -> Vec<u8> {
    let valid = json!({"type": "track", "event": "E", "anonymousId": "a"});
    let events: Vec<Value> = std::iter::once(valid).chain(std::iter::repeat_n(json!({}), invalid)).collect();
    json!({ "batch": events }).to_string().into_bytes()
}

#[tokio::test]
async fn a_request_of_too_many_events_is_refused_whole() {
    let (app, sink) = setup(|c| c.limits.max_batch_events = 500);
    let (status, _, body) = send(&app, with_invalid(499), None).await;
    assert_eq!((status, body["rejectedCount"].as_u64()), (200, Some(499)), "{body}");
    assert_eq!(body["rejected"].as_array().map(Vec::len), Some(100), "the answer lists the first 100");
    assert_eq!(sink.records().len(), 500, "the valid event and a dead letter for each other");
    let (status, _, body) = send(&app, with_invalid(500), None).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("too_many_events")), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("more than the 500 events one request may hold"), "{body}");
    assert_eq!(sink.records().len(), 500, "nothing of it is written");
}

#[tokio::test]
async fn dead_letters_count_against_what_a_request_may_write() {
    // 16 x 4,000 bytes may be written; 1,000 dead letters of about 200 bytes are more.
    let (app, sink) = setup(|c| c.limits.max_batch_bytes = 4_000);
    let (status, _, body) = send(&app, with_invalid(1_000), None).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("written_too_large")), "{body}");
    assert!(sink.records().is_empty());
    assert_eq!(send(&app, with_invalid(100), None).await.0, 200, "within the budget");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// JSON-ish fragments, so generated bodies reach the validator and not only the parser.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just(&b"{\"batch\":["[..]),
        Just(&b"{\"type\":\"track\",\"event\":\"E\",\"anonymousId\":\"a\"}"[..]),
        Just(&b"{\"type\":\"page\",\"userId\":7,\"timestamp\":\"2026-01-01\"}"[..]),
        Just(&b"],\"sentAt\":\"2026-01-01T00:00:00Z\"}"[..]),
        Just(&b",\"properties\":{\"a\":[1,2,{\"b\":null}]}"[..]),
        Just(&b"\"\\ud800\""[..]),
        Just(&b"1e999"[..]),
        Just(&b","[..]),
        Just(&b"}"[..]),
    ];
    prop::collection::vec(
        prop_oneof![fragment.prop_map(<[u8]>::to_vec), prop::collection::vec(any::<u8>(), 0..8)],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any byte string gives either accepted events or a 4xx with a JSON error, never a panic or 5xx.
    #[test]
    fn any_body_is_accepted_or_a_clear_4xx(body in prop_oneof![prop::collection::vec(any::<u8>(), 0..512), jsonish()], gzipped in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (app, _) = setup(|_| {});
        let (wire, encoding) = if gzipped { (gzip(&body), Some("gzip")) } else { (body, None) };
        let (status, _, json) = runtime.block_on(send(&app, wire, encoding));
        prop_assert!(status == 200 || (400..500).contains(&status), "status {status}: {json}");
        if status != 200 {
            prop_assert!(json["error"].is_string() && json["message"].is_string(), "error body names the problem: {json}");
        }
    }
}
