//! The Snowplow adapter through the whole handler (no socket, a memory sink): what reaches
//! Kafka with which headers, CORS with credentials, the `sp` cookie, and what malformed input
//! gets back.

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

const KEY: &str = "wk_snow";
const DLQ: &str = "events.dlq";
const TP2: &str = "/com.snowplowanalytics.snowplow/tp2";
const ORIGIN: &str = "https://shop.example";

fn setup() -> (App, Arc<MemorySink>) {
    let mut config = GatewayConfig::default();
    config.http.public_metrics = true;
    config.sources.push(SourceConfig { name: "web".into(), write_key: KEY.into(), allowed_origins: vec!["*".into()] });
    config.sources.push(SourceConfig {
        name: "app".into(),
        write_key: "wk_app".into(),
        allowed_origins: vec![ORIGIN.into()],
    });
    config.snowplow.app_sources.insert("shop-ios".into(), "app".into());
    config.snowplow.app_sources.insert("ghost".into(), "no-such-source".into());
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

fn payload(events: impl Into<Value>) -> String {
    let events = events.into();
    json!({"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": events}).to_string()
}

fn post(body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(TP2)
        .header("content-type", "application/json; charset=UTF-8")
        .header("origin", ORIGIN)
        .body(Full::new(body.into()))
        .expect("request")
}

fn get_i(query: &str) -> Request<Full<Bytes>> {
    Request::get(format!("/i?{query}")).body(Full::default()).expect("request")
}

fn assert_gif(response: &Response<()>, body: &[u8]) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert!(body.starts_with(b"GIF89a"), "a GIF, got {body:?}");
}

#[tokio::test]
async fn a_post_batch_arrives_mapped_with_credentials_cors_and_the_network_cookie() {
    let (app, sink) = setup();
    let contexts = json!({"schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [{"schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0", "data": {"id": "wp-1"}}]});
    let cx = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(contexts.to_string());
    let events = json!([
        {"e": "pv", "aid": KEY, "eid": "a1f0c3d2-0000-4000-8000-000000000001", "duid": "d-1", "url": "https://shop.example/a",
         "page": "A", "dtm": "1700000000000", "stm": "1700000000100", "cx": cx, "tv": "js-4.10.1", "p": "web"},
        {"e": "se", "aid": KEY, "se_ca": "cart", "se_ac": "add", "se_va": "3", "duid": "d-1", "uid": "u-1"},
    ]);
    let (response, body) = call(&app, post(payload(events))).await;
    assert_eq!(response.status(), 200, "{body:?}");
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(response.headers()["access-control-allow-credentials"], "true");
    let cookie = response.headers()["set-cookie"].to_str().expect("ascii");
    let network_id = cookie.strip_prefix("sp=").and_then(|c| c.split(';').next()).expect("sp cookie");
    let records = sink.records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| header(r, "protocol") == Some("snowplow") && header(r, "source") == Some("web")));
    let (view, added) = (json_of(&records[0]), json_of(&records[1]));
    assert_eq!((view["type"].as_str(), view["anonymousId"].as_str()), (Some("page"), Some("d-1")));
    assert_eq!(view["messageId"], "a1f0c3d2-0000-4000-8000-000000000001");
    assert_eq!(view["context"]["page"]["title"], "A");
    assert_eq!(view["context"]["snowplow"]["contexts"][0]["data"]["id"], "wp-1");
    assert_eq!(view["context"]["snowplow"]["networkUserId"], network_id);
    assert_eq!(view["context"]["ip"], "198.51.100.7", "edge fields as for Segment");
    assert!(view["receivedAt"].is_string() && view["timestamp"].is_string());
    assert_eq!((added["event"].as_str(), added["userId"].as_str()), (Some("add"), Some("u-1")));
    assert_eq!(added["properties"]["value"], 3);

    // The browser sends its cookie back: no new one, the same network id.
    let mut again = post(payload(json!([{"e": "pv", "aid": KEY}])));
    again.headers_mut().insert("cookie", format!("sp={network_id}").parse().expect("cookie"));
    let (response, _) = call(&app, again).await;
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(json_of(&sink.records()[2])["anonymousId"], network_id, "the network id stands in for a duid");
}

#[tokio::test]
async fn the_preflight_allows_credentials_only_for_snowplow_paths() {
    let (app, _) = setup();
    let preflight = |path: &str| {
        Request::options(path)
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Full::default())
            .expect("request")
    };
    let (response, _) = call(&app, preflight(TP2)).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(response.headers()["access-control-allow-credentials"], "true");
    assert!(response.headers()["access-control-allow-headers"].to_str().expect("ascii").contains("Content-Type"));
    let (response, _) = call(&app, preflight("/v1/batch")).await;
    assert!(response.headers().get("access-control-allow-credentials").is_none(), "Segment stays uncredentialed");
}

#[tokio::test]
async fn the_get_pixel_answers_a_gif_and_dead_letters_what_it_cannot_map() {
    let (app, sink) = setup();
    let (response, body) = call(&app, get_i(&format!("e=se&aid={KEY}&se_ca=mail&se_ac=open&uid=reader-1"))).await;
    assert_gif(&response, &body);
    let (response, body) = call(&app, get_i(&format!("e=xx&aid={KEY}&uid=reader-1"))).await;
    assert_gif(&response, &body);
    let (response, body) = call(&app, get_i("e=pv&duid=d")).await;
    assert_gif(&response, &body);
    let records = sink.records();
    assert_eq!(records.len(), 2, "one event, one dead letter; the keyless one only counted");
    let opened = json_of(&records[0]);
    assert_eq!((opened["event"].as_str(), opened["properties"]["category"].as_str()), (Some("open"), Some("mail")));
    let letter = json_of(records.iter().find(|r| r.topic == DLQ).expect("dead letter"));
    assert_eq!((letter["reasonKind"].as_str(), letter["source"].as_str()), (Some("unknown_event_type"), Some("web")));
    assert_eq!(letter["payload"]["e"], "xx");
}

#[tokio::test]
async fn an_app_id_maps_to_its_configured_source() {
    let (app, sink) = setup();
    let (response, _) = call(&app, post(payload(json!([{"e": "pv", "aid": "shop-ios", "duid": "d"}])))).await;
    assert_eq!(response.status(), 200);
    let record = &sink.records()[0];
    assert_eq!(header(record, "source"), Some("app"));
    assert_eq!(json_of(record)["context"]["snowplow"]["appId"], "shop-ios", "a mapped app id is kept");
}

#[tokio::test]
async fn malformed_posts_get_a_4xx_naming_the_problem_and_the_gateway_stays_up() {
    let (app, sink) = setup();
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("{not json".into(), 400, "invalid_json", "invalid JSON"),
        (json!([{"e": "pv"}]).to_string(), 400, "bad_shape", "payload_data"),
        (json!({"schema": "iglu:x/y/jsonschema/1-0-0", "data": []}).to_string(), 400, "bad_shape", "payload_data"),
        (json!({"data": "pv"}).to_string(), 400, "bad_shape", "`data`"),
        (payload(json!([])), 400, "bad_shape", "holds no events"),
        (payload(json!([{"e": "pv", "duid": "d"}])), 401, "missing_write_key", "appId"),
        (payload(json!([{"e": "pv", "aid": "nope", "duid": "d"}])), 401, "unknown_write_key", "write key"),
        (payload(json!([{"e": "pv", "aid": "ghost", "duid": "d"}])), 401, "unknown_write_key", "no-such-source"),
        (payload(json!([{"e": "se", "aid": KEY, "duid": "d"}])), 400, "no_valid_events", "se_ac"),
        (payload(json!([{"e": "pv", "aid": KEY, "duid": "d", "dtm": "soon"}])), 400, "no_valid_events", "dtm"),
    ];
    for (body, status, kind, named) in cases {
        let (response, bytes) = call(&app, post(body.clone())).await;
        let answer: Value = serde_json::from_slice(&bytes).expect("json error body");
        assert_eq!((response.status().as_u16(), answer["error"].as_str()), (status, Some(kind)), "{body}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains(named)), "{body}: {answer} names {named}");
        assert_eq!(response.headers()["access-control-allow-credentials"], "true", "the tracker can read errors");
    }
    assert!(sink.records().is_empty());
    let mixed =
        payload(json!([{"e": "pv", "aid": KEY, "duid": "d"}, {"e": "ue", "aid": KEY, "duid": "d", "ue_px": "!"}]));
    let (response, bytes) = call(&app, post(mixed)).await;
    let answer: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(response.status(), 200, "still serving: {answer}");
    assert_eq!(
        answer["rejected"][0],
        json!({"index": 1, "kind": "invalid_self_describing_event",
        "reason": answer["rejected"][0]["reason"]})
    );
    let letter = sink.records().iter().find(|r| r.topic == DLQ).map(json_of).expect("dead letter");
    assert_eq!((letter["index"].as_u64(), letter["payload"]["ue_px"].as_str()), (Some(1), Some("!")));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// A Snowplow field and a value of the kinds trackers send, and some they should not.
fn field() -> impl Strategy<Value = (String, Value)> {
    let name = prop_oneof![
        Just("e".to_owned()),
        "(se_(ca|ac|la|pr|va)|ue_(pr|px)|co|cx|tr_(id|tt)|ti_(sk|pr|qu)|dtm|stm|ttm|duid|uid|url|res|vid|xyz)",
    ];
    let value = prop_oneof![
        "(pv|pp|se|ue|tr|ti|zz)".prop_map(Value::from),
        "[ -~]{0,24}".prop_map(Value::from),
        any::<i64>().prop_map(|n| Value::from(n.to_string())),
        any::<f64>().prop_map(|n| json!(n)),
        Just(json!({"schema": "iglu:a/b/jsonschema/1-0-0", "data": {}})),
        Just(Value::Null),
    ];
    (name, value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any events posted get a JSON answer, never a 5xx, and every event is either on the raw
    /// topic or a dead letter.
    #[test]
    fn any_posted_events_get_a_json_answer(events in prop::collection::vec(prop::collection::vec(field(), 0..8), 1..4)) {
        let events: Vec<Value> = events.into_iter().map(|fields| {
            let mut event: serde_json::Map<String, Value> = fields.into_iter().collect();
            event.insert("aid".into(), json!(KEY));
            Value::Object(event)
        }).collect();
        let count = events.len();
        let (app, sink) = setup();
        let (response, bytes) = runtime().block_on(call(&app, post(payload(Value::Array(events)))));
        let status = response.status().as_u16();
        prop_assert!(status == 200 || status == 400, "{}", status);
        let answer: Value = serde_json::from_slice(&bytes).expect("json");
        if status == 200 {
            prop_assert_eq!(sink.records().len(), count, "{}", answer);
        }
    }

    /// Whatever the query holds, `/i` answers the GIF and writes at most one record.
    #[test]
    fn any_get_query_answers_the_gif(fields in prop::collection::vec(field(), 0..8)) {
        let mut query = url::form_urlencoded::Serializer::new(format!("aid={KEY}&"));
        for (name, value) in &fields {
            query.append_pair(name, &value.as_str().map_or_else(|| value.to_string(), str::to_owned));
        }
        let (app, sink) = setup();
        let (response, body) = runtime().block_on(call(&app, get_i(&query.finish())));
        prop_assert_eq!(response.status(), 200);
        prop_assert!(body.starts_with(b"GIF89a"));
        prop_assert!(sink.records().len() <= 1);
    }
}
