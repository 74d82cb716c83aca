//! The handler without a socket or a broker: protocol details that browsers and SDKs rely on.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::sink::MemorySink;
use clickstream_gateway::{app, App, AppState, GatewayConfig};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

const KEY: &str = "wk_app";

fn setup(tweak: impl FnOnce(&mut GatewayConfig)) -> (App, Arc<MemorySink>) {
    let mut config = GatewayConfig::default();
    config.sources.push(SourceConfig {
        name: "site".into(),
        write_key: KEY.into(),
        allowed_origins: vec!["https://shop.example".into()],
    });
    config.sources.push(SourceConfig {
        name: "other".into(),
        write_key: "wk_other".into(),
        allowed_origins: vec!["*".into()],
    });
    tweak(&mut config);
    let sink = Arc::new(MemorySink::default());
    (app(AppState::new(config, sink.clone()).expect("valid routing")), sink)
}

fn peer() -> SocketAddr {
    "198.51.100.23:50000".parse().expect("addr")
}

async fn call(app: &App, request: Request<Full<Bytes>>) -> (Response<()>, Value) {
    let response = app.handle(request, peer()).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
    (Response::from_parts(parts, ()), value)
}

fn post(path: &str) -> http::request::Builder {
    Request::builder().method(Method::POST).uri(path)
}

fn header<'a>(response: &'a Response<()>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn stored(sink: &MemorySink) -> Vec<Value> {
    sink.records().iter().map(|r| serde_json::from_slice(&r.payload).expect("json")).collect()
}

#[tokio::test]
async fn preflight_allows_what_analytics_js_asks_for() {
    let (app, _) = setup(|_| {});
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/t")
        .header("origin", "https://shop.example")
        .header("access-control-request-headers", "authorization,content-type,x-retry-count")
        .body(Full::default())
        .expect("request");
    let (response, _) = call(&app, request).await;
    assert_eq!(response.status(), 204);
    let allowed = header(&response, "access-control-allow-headers").expect("allow-headers").to_ascii_lowercase();
    for needed in ["authorization", "content-type", "x-retry-count"] {
        assert!(allowed.contains(needed), "{needed} missing from {allowed}");
    }
    assert_eq!(header(&response, "access-control-allow-origin"), Some("https://shop.example"));
    assert!(header(&response, "access-control-allow-methods").expect("methods").contains("POST"));
}

#[tokio::test]
async fn settings_point_analytics_js_at_this_gateway() {
    let (app, _) = setup(|_| {});
    let request = Request::get(format!("/v1/projects/{KEY}/settings"))
        .header("host", "t.local:8080")
        .body(Full::default())
        .expect("req");
    let (response, body) = call(&app, request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body["integrations"]["Segment.io"],
        json!({"apiKey": KEY, "apiHost": "t.local:8080/v1", "protocol": "http"})
    );

    let (app, _) = setup(|c| c.http.public_url = "https://collect.example.com/".into());
    let (_, body) =
        call(&app, Request::get(format!("/v1/projects/{KEY}/settings")).body(Full::default()).expect("req")).await;
    assert_eq!(body["integrations"]["Segment.io"]["apiHost"], "collect.example.com/v1");
    assert_eq!(body["integrations"]["Segment.io"]["protocol"], "https");

    let (response, body) =
        call(&app, Request::get("/v1/projects/unknown/settings").body(Full::default()).expect("req")).await;
    assert_eq!((response.status().as_u16(), body["error"].as_str()), (401, Some("unknown_write_key")));
}

#[tokio::test]
async fn sdk_telemetry_is_accepted_and_discarded() {
    let (app, sink) = setup(|_| {});
    let body = json!({"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]});
    let request = post("/v1/m").header("content-type", "text/plain").body(Full::from(body.to_string())).expect("req");
    let (response, _) = call(&app, request).await;
    assert_eq!(response.status(), 200);
    assert!(sink.records().is_empty());
}

#[tokio::test]
async fn basic_auth_key_wins_over_body_and_header_keys() {
    let (app, sink) = setup(|_| {});
    let body = json!({"writeKey": "wk_other", "type": "track", "event": "E", "anonymousId": "a"});
    let request = post("/v1/track")
        .header("authorization", "Basic d2tfYXBwOg==") // base64("wk_app:")
        .header("x-write-key", "wk_other")
        .body(Full::from(body.to_string()))
        .expect("req");
    let (response, _) = call(&app, request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(&*sink.records()[0].headers.source, "site");
}

#[tokio::test]
async fn errors_are_readable_cross_origin_and_503_says_when_to_retry() {
    let (app, sink) = setup(|c| c.http.retry_after_secs = 7);
    sink.set_down(true);
    let body = json!({"batch": [{"type": "track", "event": "E", "anonymousId": "a"}]});
    let request = post("/v1/batch")
        .header("origin", "https://shop.example")
        .header("x-write-key", KEY)
        .body(Full::from(body.to_string()))
        .expect("req");
    let (response, json) = call(&app, request).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "retry-after"), Some("7"));
    assert_eq!(header(&response, "access-control-allow-origin"), Some("https://shop.example"));
    assert!(header(&response, "access-control-expose-headers").expect("expose").contains("Retry-After"));
    assert_eq!(json["error"], "kafka_unavailable");
    let (ready, _) = call(&app, Request::get("/readyz").body(Full::default()).expect("req")).await;
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let (app, _) = setup(|_| {});
    let (response, body) = call(&app, Request::get("/nope").body(Full::default()).expect("req")).await;
    assert_eq!((response.status().as_u16(), body["error"].as_str()), (404, Some("not_found")));
    let (response, body) = call(&app, Request::get("/v1/batch").body(Full::default()).expect("req")).await;
    assert_eq!((response.status().as_u16(), body["error"].as_str()), (405, Some("method_not_allowed")));
}

#[tokio::test]
async fn client_ip_comes_from_the_trusted_proxy_and_can_be_anonymized() {
    let (app, sink) = setup(|c| {
        c.http.trusted_proxy_header = "x-forwarded-for".into();
        // The test's peer is the ingress; 10.0.0.1 a load balancer before it.
        c.http.trusted_proxies = vec!["198.51.100.0/24".parse().expect("cidr"), "10.0.0.0/8".parse().expect("cidr")];
        c.privacy.anonymize_ip = true;
    });
    let body = json!({"type": "page", "anonymousId": "a"});
    // The client forged the left-most hop; the right-most untrusted one is its real address.
    let request = post("/v1/page")
        .header("x-write-key", KEY)
        .header("x-forwarded-for", "192.0.2.66, 203.0.113.77, 10.0.0.1")
        .body(Full::from(body.to_string()))
        .expect("req");
    assert_eq!(call(&app, request).await.0.status(), 200);
    assert_eq!(stored(&sink)[0]["context"]["ip"], "203.0.113.0");

    let (app, sink) = setup(|_| {});
    let body = json!({"type": "page", "anonymousId": "a", "context": {"ip": "192.0.2.5"}});
    let request = post("/v1/page").header("x-write-key", KEY).body(Full::from(body.to_string())).expect("req");
    assert_eq!(call(&app, request).await.0.status(), 200);
    assert_eq!(stored(&sink)[0]["context"]["ip"], "192.0.2.5", "a server SDK's end-user IP is kept");
}

#[tokio::test]
async fn batch_context_applies_under_each_events_own() {
    let (app, sink) = setup(|_| {});
    let body = json!({
        "batch": [
            {"type": "track", "event": "A", "anonymousId": "a", "context": {"locale": "de-DE"}},
            {"type": "track", "event": "B", "anonymousId": "a"}
        ],
        "context": {"locale": "en-US", "library": {"name": "custom"}}
    });
    let request = post("/v1/batch").header("x-write-key", KEY).body(Full::from(body.to_string())).expect("req");
    assert_eq!(call(&app, request).await.0.status(), 200);
    let events = stored(&sink);
    assert_eq!(events[0]["context"]["locale"], "de-DE");
    assert_eq!(events[1]["context"]["locale"], "en-US");
    assert_eq!(events[1]["context"]["library"]["name"], "custom");
    assert_eq!(events[0]["context"]["ip"], "198.51.100.23");
}

#[tokio::test]
async fn records_keep_the_clients_bytes_where_the_edge_adds_nothing() {
    let (app, sink) = setup(|_| {});
    let body = r#"{"writeKey":"wk_app","event":"Order Completed","anonymousId":"a","userId":42,
        "properties":{"total":10.50,"rate":1e-3,"name":"caf\u00e9"},"_metadata":{"bundled":["Segment.io"]}}"#;
    let request = post("/v1/t").body(Full::from(body)).expect("req");
    assert_eq!(call(&app, request).await.0.status(), 200);
    let records = sink.records();
    let payload = std::str::from_utf8(&records[0].payload).expect("utf-8");
    assert!(payload.starts_with(r#"{"type":"track","event":"Order Completed","anonymousId":"a","userId":"42","#));
    assert!(payload.contains(r#""properties":{"total":10.50,"rate":1e-3,"name":"caf\u00e9"}"#), "{payload}");
    assert!(payload.contains(r#""_metadata":{"bundled":["Segment.io"]}"#), "{payload}");
    assert!(!payload.contains("writeKey"), "{payload}");
    let event: Value = serde_json::from_str(payload).expect("json");
    assert_eq!(event["context"]["ip"], "198.51.100.23");
    assert!(event["messageId"].is_string() && event["receivedAt"].is_string() && event["timestamp"].is_string());
    assert_eq!(records[0].headers.pairs().nth(1), Some(("event-type", "track")));
}

#[tokio::test]
async fn metrics_are_not_on_the_public_port_unless_turned_on() {
    let get_metrics = || Request::get("/metrics").body(Full::<Bytes>::default()).expect("request");
    let (closed, _) = setup(|_| {});
    let (response, body) = call(&closed, get_metrics()).await;
    assert_eq!((response.status().as_u16(), &body["error"]), (404, &json!("not_found")), "{body}");
    let (open, _) = setup(|c| c.http.public_metrics = true);
    let response = open.handle(get_metrics(), peer()).await;
    assert_eq!(response.status().as_u16(), 200);
    let text =
        String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
    assert!(text.contains("clickstream_"), "{text}");
}

#[tokio::test]
async fn a_draining_gateway_is_unready_but_still_takes_events_and_closes_connections() {
    let mut config = GatewayConfig::default();
    config.sources.push(SourceConfig { name: "site".into(), write_key: KEY.into(), allowed_origins: vec!["*".into()] });
    let sink = Arc::new(MemorySink::default());
    let state = AppState::new(config, sink.clone()).expect("valid routing");
    let handler = app(state.clone());
    let ready = || Request::get("/readyz").body(Full::<Bytes>::default()).expect("request");
    assert_eq!(call(&handler, ready()).await.0.status().as_u16(), 200);
    state.start_draining();
    let (response, body) = call(&handler, ready()).await;
    assert_eq!((response.status().as_u16(), &body["status"]), (503, &json!("unavailable")), "{body}");
    let event = json!({"type": "track", "event": "Late", "anonymousId": "a-1"}).to_string();
    let request = post("/v1/track").header("x-write-key", KEY).body(Full::new(Bytes::from(event))).expect("request");
    let (response, body) = call(&handler, request).await;
    assert_eq!((response.status().as_u16(), body), (200, json!({"success": true})));
    assert_eq!(header(&response, "connection"), Some("close"), "keep-alive clients move to another instance");
    assert_eq!(stored(&sink).len(), 1, "the event was delivered");
}
