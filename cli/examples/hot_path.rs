//! The gateway's CPU per request on the ingest path, without sockets or Kafka: the handler
//! (`App::handle`) over a null sink, fed requests built beforehand, with the binary's allocator.
//! Made for `valgrind --tool=callgrind --toggle-collect='*measured*'`, which counts only the
//! handler; the wall-clock figure it prints is a same-process A/B between cases.
//!
//! `cargo run --release -p clickstream --example hot_path -- [CASE] [REQUESTS] [dedup=off]
//! [plan=conforming|plan=violating]`, CASE one of `single`, `single-small`, `batch`,
//! `batch-small`, `posthog-batch`, `snowplow-batch`, `pixel`, `all` (the default). The last
//! three send the small event by PostHog's `/batch` and Snowplow's tp2 POST (100 per request)
//! and by Segment's pixel, for each protocol's cost next to Segment's. `plan=` gives the source
//! a tracking plan (action `allow`) that every event meets, or that every event breaks once,
//! for the cost of validation.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::sink::{EventSink, NullSink};
use clickstream_gateway::{app, App, AppState, GatewayConfig};
use clickstream_loadtest::payload::ids::Sequence;
use clickstream_loadtest::payload::{Generator, Mode};
use clickstream_loadtest::Catalog;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WRITE_KEY: &str = "wk_bench";
/// `Basic base64("wk_bench:")`, as side-by-side.sh sends it.
const BASIC: &str = "Basic d2tfYmVuY2g6";

/// The small event of the shared side-by-side bench (no messageId, so dedup sees none).
fn small_event(i: usize) -> String {
    format!(
        r#"{{"type": "track", "event": "Product Viewed", "anonymousId": "u-{i}", "properties": {{"product_id": "p{}", "price": 9.5, "currency": "USD"}}, "context": {{"page": {{"url": "https://shop.example.com/p/1", "referrer": "https://www.google.com/"}}}}}}"#,
        i % 200
    )
}

/// The small event as posthog-js would send it.
fn small_posthog_event(i: usize) -> String {
    format!(
        r#"{{"event": "Product Viewed", "distinct_id": "u-{i}", "properties": {{"product_id": "p{}", "price": 9.5, "currency": "USD", "$current_url": "https://shop.example.com/p/1", "$referrer": "https://www.google.com/"}}, "timestamp": "2026-12-06T10:00:00.000Z"}}"#,
        i % 200
    )
}

/// The small event as Snowplow's JavaScript tracker would send it: a self-describing event,
/// every field a string, the write key as the app id.
fn small_snowplow_event(i: usize) -> String {
    let data = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{{"schema":"iglu:example.shop/product_viewed/jsonschema/1-0-0","data":{{"product_id":"p{}","price":9.5,"currency":"USD"}}}}}}"#,
        i % 200
    );
    serde_json::json!({
        "e": "ue", "aid": WRITE_KEY, "p": "web", "tv": "js-4.1.0", "tna": "sp", "duid": format!("u-{i}"),
        "dtm": "1796551200000", "stm": "1796551200050", "url": "https://shop.example.com/p/1",
        "refr": "https://www.google.com/", "ue_pr": data,
    })
    .to_string()
}

/// `run` numbers the message ids, so the warm-up's events are not duplicates of the measured ones.
fn requests(case: &str, count: usize, run: u32) -> Vec<Request<Full<Bytes>>> {
    let post = |path: &str, content_type: &str, auth: Option<&str>, body: Vec<u8>| {
        let mut builder =
            Request::builder().method(Method::POST).uri(path).header(http::header::CONTENT_TYPE, content_type);
        if let Some(auth) = auth {
            builder = builder.header(http::header::AUTHORIZATION, auth);
        }
        builder.body(Full::new(Bytes::from(body))).expect("a valid request")
    };
    let realistic = |mode| {
        let catalog = Arc::new(Catalog::builtin());
        let mut generator = Generator::new(catalog, 1000, u64::from(run), Sequence::new(run), WRITE_KEY, mode);
        (0..count)
            .map(|i| {
                let mut request = generator.next_request();
                request.stamp(i as u64);
                let auth = request.authorization.as_deref().map(str::to_owned);
                post(&request.path, request.content_type, auth.as_deref(), request.body)
            })
            .collect()
    };
    match case {
        // analytics.js: one realistic event per request, on its short paths, key in the body.
        "single" => realistic(Mode::Single),
        "batch" => realistic(Mode::Batch { events: 100 }),
        "single-small" => {
            (0..count).map(|i| post("/v1/track", "application/json", Some(BASIC), small_event(i).into())).collect()
        }
        "batch-small" => (0..count)
            .map(|r| {
                let events: Vec<String> = (0..100).map(|i| small_event(r * 100 + i)).collect();
                let body = format!(r#"{{"batch": [{}]}}"#, events.join(", "));
                post("/v1/batch", "application/json", Some(BASIC), body.into())
            })
            .collect(),
        "posthog-batch" => (0..count)
            .map(|r| {
                let events: Vec<String> = (0..100).map(|i| small_posthog_event(r * 100 + i)).collect();
                let body = format!(r#"{{"api_key": "{WRITE_KEY}", "batch": [{}]}}"#, events.join(", "));
                post("/batch/", "application/json", None, body.into())
            })
            .collect(),
        "snowplow-batch" => (0..count)
            .map(|r| {
                let events: Vec<String> = (0..100).map(|i| small_snowplow_event(r * 100 + i)).collect();
                let body = format!(
                    r#"{{"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": [{}]}}"#,
                    events.join(", ")
                );
                post("/com.snowplowanalytics.snowplow/tp2", "application/json; charset=UTF-8", None, body.into())
            })
            .collect(),
        "pixel" => (0..count)
            .map(|i| {
                use base64::Engine as _;
                let event = small_event(i).replacen('{', &format!(r#"{{"writeKey": "{WRITE_KEY}", "#), 1);
                let data = base64::engine::general_purpose::URL_SAFE.encode(event);
                let uri = format!("/v1/pixel/track?data={data}");
                Request::builder().method(Method::GET).uri(uri).body(Full::new(Bytes::new())).expect("a valid request")
            })
            .collect(),
        other => panic!(
            "unknown case {other}: single, single-small, batch, batch-small, posthog-batch, snowplow-batch, pixel"
        ),
    }
}

/// A plan for the `bench` source: the small event's own schema and a `_default` for the load
/// generator's events. `violating` requires a property no event has.
fn write_plan(dir: &std::path::Path, violating: bool) {
    let folder = dir.join("bench");
    std::fs::create_dir_all(&folder).expect("plan folder");
    let mut required = vec!["product_id"];
    if violating {
        required.push("sku");
    }
    let product_viewed = serde_json::json!({
        "type": "object",
        "required": ["properties", "anonymousId"],
        "properties": {
            "anonymousId": {"type": "string"},
            "properties": {"type": "object", "required": required, "properties": {
                "product_id": {"type": "string"},
                "price": {"type": "number", "minimum": 0},
                "currency": {"enum": ["USD", "EUR", "GBP"]}
            }},
            "context": {"type": "object", "properties": {"page": {"type": "object", "properties": {
                "url": {"type": "string"}, "referrer": {"type": "string"}
            }}}}
        }
    });
    let default = serde_json::json!({
        "type": "object",
        "required": if violating { vec!["type", "sku"] } else { vec!["type"] },
        "properties": {"properties": {"type": "object"}, "context": {"type": "object"}}
    });
    std::fs::write(folder.join("Product Viewed.json"), product_viewed.to_string()).expect("schema");
    std::fs::write(folder.join("_default.json"), default.to_string()).expect("schema");
}

fn gateway(dedup: bool, plan: Option<&std::path::Path>) -> App {
    let mut config = GatewayConfig::default();
    config.sources.push(SourceConfig { name: "bench".into(), write_key: WRITE_KEY.into(), allowed_origins: vec![] });
    config.dedup.enabled = dedup;
    if let Some(plan) = plan {
        config.tracking_plan.dir = plan.display().to_string();
    }
    let sink: Arc<dyn EventSink> = Arc::new(NullSink);
    app(AppState::new(config, sink).expect("default routing compiles"))
}

/// The only code callgrind counts: every request through the handler, and its body read.
#[inline(never)]
fn measured(runtime: &tokio::runtime::Runtime, app: &App, requests: Vec<Request<Full<Bytes>>>) -> usize {
    serve(runtime, app, requests)
}

/// Fills caches and pools first, outside the count.
#[inline(never)]
fn warm_up(runtime: &tokio::runtime::Runtime, app: &App, requests: Vec<Request<Full<Bytes>>>) -> usize {
    serve(runtime, app, requests)
}

fn serve(runtime: &tokio::runtime::Runtime, app: &App, requests: Vec<Request<Full<Bytes>>>) -> usize {
    let peer: SocketAddr = "198.51.100.23:50000".parse().expect("addr");
    runtime.block_on(async {
        let mut ok = 0;
        for request in requests {
            let response = app.handle(request, peer).await;
            ok += usize::from(response.status().is_success());
            black_box(response.into_body().collect().await.map(|b| b.to_bytes()).ok());
        }
        ok
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let case = args.first().map_or("all", String::as_str);
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let dedup = !args.iter().any(|a| a == "dedup=off");
    let plan_kind = args.iter().find_map(|a| a.strip_prefix("plan=")).unwrap_or("none");
    let plan_dir = tempfile::tempdir().expect("plan dir");
    let plan = match plan_kind {
        "none" => None,
        "conforming" | "violating" => {
            write_plan(plan_dir.path(), plan_kind == "violating");
            Some(plan_dir.path())
        }
        other => panic!("unknown plan={other}: conforming or violating"),
    };
    let cases: Vec<&str> = if case == "all" {
        vec!["single-small", "single", "batch-small", "batch", "posthog-batch", "snowplow-batch", "pixel"]
    } else {
        vec![case]
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for case in cases {
        // Batches carry 100 events each: fewer requests for the same work.
        let batched = case.contains("batch");
        let count = if batched { count.div_ceil(100).max(1) } else { count };
        let events = if batched { 100 } else { 1 };
        let app = gateway(dedup, plan);
        warm_up(&runtime, &app, requests(case, count.min(100), 1));
        let batch = requests(case, count, 2);
        let started = Instant::now();
        let ok = measured(&runtime, &app, batch);
        let elapsed = started.elapsed().as_nanos() as f64;
        assert_eq!(ok, count, "every request is accepted");
        println!(
            "{case:<13} dedup={} plan={plan_kind} requests={count} {:.2} µs per request, {:.2} µs per event",
            if dedup { "on " } else { "off" },
            elapsed / count as f64 / 1000.0,
            elapsed / (count * events) as f64 / 1000.0
        );
    }
}
