//! The gateway against Tansu: events go in over HTTP and are read back from Kafka.

use std::io::Write;
use std::time::Duration;

use clickstream_tests::kafka::{create_topics, read_exactly};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, ALLOWED_ORIGIN, SOURCE_NAME, WRITE_KEY};
use serde_json::{json, Value};

const READ_TIMEOUT: Duration = Duration::from_secs(30);

struct Setup {
    tansu: Tansu,
    raw: String,
    dlq: String,
    gateway: clickstream_gateway::GatewayHandle,
    url: String,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(tweak: impl FnOnce(&mut clickstream_gateway::GatewayConfig)) -> Setup {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    tweak(&mut config);
    let gateway = clickstream_gateway::start(config).await.expect("gateway starts");
    let url = format!("http://{}", gateway.addr);
    Setup { tansu, raw, dlq, gateway, url }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let response = client().post(url).basic_auth(WRITE_KEY, Some("")).json(body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_lands_in_kafka_with_edge_fields() {
    let s = setup().await;
    // The device clock runs one hour fast; the event happened 10 s before the batch was sent.
    let body = json!({
        "batch": [{
            "type": "track", "event": "Product Viewed", "anonymousId": "a1", "userId": "u1",
            "properties": {"product_id": "p1", "price": 18.29},
            "timestamp": "2030-01-01T12:59:50Z", "_metadata": {"kept": true}
        }],
        "sentAt": "2030-01-01T13:00:00Z",
        "writeKey": WRITE_KEY
    });
    let response = client()
        .post(format!("{}/v1/batch", s.url))
        .basic_auth(WRITE_KEY, Some(""))
        .header("user-agent", "integration-test/1.0")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"success": true}));

    let messages = read_exactly(&s.tansu.bootstrap(), &s.raw, 1, READ_TIMEOUT).await;
    let message = &messages[0];
    let event = &message.value;
    assert_eq!(message.key.as_deref(), Some("a1"), "keyed by anonymousId");
    assert_eq!(message.header("source"), Some(SOURCE_NAME));
    assert_eq!(message.header("event-type"), Some("track"));
    assert_eq!(message.header("protocol"), Some("segment"));
    assert!(!message.headers.iter().any(|(_, v)| v == WRITE_KEY), "write key must not reach Kafka");
    assert!(event.get("writeKey").is_none());
    assert_eq!(event["event"], "Product Viewed");
    assert_eq!(event["properties"], json!({"product_id": "p1", "price": 18.29}));
    assert_eq!(event["_metadata"], json!({"kept": true}), "unknown fields are preserved");
    let id = uuid::Uuid::parse_str(event["messageId"].as_str().expect("messageId")).expect("uuid");
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(event["originalTimestamp"], "2030-01-01T12:59:50.000Z");
    assert_eq!(event["sentAt"], "2030-01-01T13:00:00.000Z");
    let received =
        chrono::DateTime::parse_from_rfc3339(event["receivedAt"].as_str().expect("receivedAt")).expect("time");
    let timestamp =
        chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().expect("timestamp")).expect("time");
    assert_eq!(received - timestamp, chrono::Duration::seconds(10), "skew-corrected timestamp");
    assert!((chrono::Utc::now() - received.to_utc()).num_seconds().abs() < 60, "receivedAt is server time");
    assert_eq!(event["context"]["ip"], "127.0.0.1");
    assert_eq!(event["context"]["userAgent"], "integration-test/1.0");
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_shape_reaches_kafka() {
    let s = setup().await;
    let event =
        |kind: &str, id: &str| json!({"type": kind, "event": "E", "name": "N", "anonymousId": "v", "messageId": id});
    // Single event as analytics.js sends it: text/plain, write key in the body, short path.
    let mut beacon = event("track", "m-short");
    beacon["writeKey"] = json!(WRITE_KEY);
    let r = client()
        .post(format!("{}/v1/t", s.url))
        .header("content-type", "text/plain")
        .body(beacon.to_string())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    // Long path, key in X-Write-Key, no type in the body.
    let r = client()
        .post(format!("{}/v1/identify", s.url))
        .header("x-write-key", WRITE_KEY)
        .json(&json!({"userId": "u", "messageId": "m-identify", "traits": {"plan": "pro"}}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    // Gzipped batch on /v1/import.
    let batch = json!({"batch": [event("page", "m-import")]}).to_string();
    let r = client()
        .post(format!("{}/v1/import", s.url))
        .basic_auth(WRITE_KEY, Some(""))
        .header("content-encoding", "gzip")
        .body(gzip(batch.as_bytes()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    // NDJSON and a JSON array on /v1/events.
    let ndjson = format!("{}\n{}\n", event("screen", "m-nd1"), event("screen", "m-nd2"));
    let r = client()
        .post(format!("{}/v1/events", s.url))
        .basic_auth(WRITE_KEY, Some(""))
        .body(ndjson)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let (status, _) = post_json(&format!("{}/v1/events", s.url), &json!([event("track", "m-arr")])).await;
    assert_eq!(status, 200);
    // /v1/b, analytics.js batching mode.
    let (status, _) =
        post_json(&format!("{}/v1/b", s.url), &json!({"batch": [event("alias", "m-b")], "writeKey": WRITE_KEY})).await;
    assert_eq!(status, 400, "alias without previousId is rejected");

    let messages = read_exactly(&s.tansu.bootstrap(), &s.raw, 6, READ_TIMEOUT).await;
    let mut seen: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m.value["messageId"].as_str().unwrap_or("?").to_owned(),
                m.value["type"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = [
        ("m-short", "track"),
        ("m-identify", "identify"),
        ("m-import", "page"),
        ("m-nd1", "screen"),
        ("m-nd2", "screen"),
        ("m-arr", "track"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(seen, expected);
    let identify = messages.iter().find(|m| m.value["type"] == "identify").expect("identify");
    assert_eq!(identify.key.as_deref(), Some("u"), "userId keys events without anonymousId");
    assert_eq!(identify.value["traits"]["plan"], "pro");
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partially_invalid_batch_keeps_valid_events_and_dead_letters_the_rest() {
    let s = setup().await;
    let body = json!({"batch": [
        {"type": "track", "event": "Ok 1", "anonymousId": "a", "messageId": "ok-1"},
        {"type": "track", "event": "No identity", "properties": {"x": 1}},
        {"type": "track", "event": "Ok 2", "userId": "u", "messageId": "ok-2"},
        {"type": "track", "event": ["not", "a", "string"], "userId": "u"}
    ]});
    let (status, response) = post_json(&format!("{}/v1/batch", s.url), &body).await;
    assert_eq!(status, 200);
    assert_eq!(response["success"], true);
    let rejected = response["rejected"].as_array().expect("rejected list");
    assert_eq!(rejected.len(), 2);
    assert_eq!((rejected[0]["index"].as_u64(), rejected[0]["kind"].as_str()), (Some(1), Some("missing_identity")));
    assert_eq!((rejected[1]["index"].as_u64(), rejected[1]["kind"].as_str()), (Some(3), Some("wrong_type")));
    assert!(rejected[1]["reason"].as_str().expect("reason").contains("`event`"), "{rejected:?}");

    let raw = read_exactly(&s.tansu.bootstrap(), &s.raw, 2, READ_TIMEOUT).await;
    let mut ids: Vec<&str> = raw.iter().map(|m| m.value["messageId"].as_str().expect("id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["ok-1", "ok-2"]);
    let mut dead = read_exactly(&s.tansu.bootstrap(), &s.dlq, 2, READ_TIMEOUT).await;
    dead.sort_by_key(|m| m.value["index"].as_u64());
    assert_eq!(dead[0].value["reasonKind"], "missing_identity");
    assert_eq!(dead[0].value["source"], SOURCE_NAME);
    assert_eq!(dead[0].value["payload"], body["batch"][1], "dead letter carries the event as sent");
    assert_eq!(dead[1].value["reasonKind"], "wrong_type");
    assert_eq!(dead[0].header("source"), Some(SOURCE_NAME));
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_the_server_keeps_serving() {
    let s = setup().await;
    let batch_url = format!("{}/v1/batch", s.url);
    let send = |body: Vec<u8>, extra: &[(&str, &str)]| {
        let mut request = client().post(&batch_url).basic_auth(WRITE_KEY, Some("")).body(body);
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("every error has a JSON body"))
        }
    };
    let event = json!({"type": "track", "event": "E", "anonymousId": "a"});
    /// Name, body, extra headers, expected status, expected error kind.
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("invalid JSON", b"{\"batch\": [".to_vec(), vec![], 400, "invalid_json"),
        ("batch not an array", br#"{"batch": {"type": "track"}}"#.to_vec(), vec![], 400, "bad_shape"),
        (
            "wrong types",
            json!({"batch": [{"type": "track", "event": 1, "anonymousId": "a"}]}).to_string().into_bytes(),
            vec![],
            400,
            "no_valid_events",
        ),
        (
            "missing identity",
            json!({"batch": [{"type": "track", "event": "E"}]}).to_string().into_bytes(),
            vec![],
            400,
            "no_valid_events",
        ),
        ("body over the limit", vec![b' '; 600 * 1024], vec![], 413, "body_too_large"),
        (
            "corrupt gzip",
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            vec![("content-encoding", "gzip")],
            400,
            "bad_compression",
        ),
        ("gzip bomb", gzip(&vec![b' '; 5 * 1024 * 1024]), vec![("content-encoding", "gzip")], 413, "body_too_large"),
        (
            // 100 KB copied into each of 3,000 events would write 300 MB: refused at 8 MiB.
            "batch context copied into every event",
            json!({"context": {"blob": "x".repeat(100_000)}, "batch": vec![json!({"type": "page", "userId": 1}); 3_000]})
                .to_string()
                .into_bytes(),
            vec![],
            413,
            "written_too_large",
        ),
        (
            // One valid event and 140,000 invalid ones, which took 280 MB to handle.
            "more events than limits.max_batch_events",
            json!({"batch": std::iter::once(event.clone()).chain(std::iter::repeat_n(json!({}), 140_000)).collect::<Vec<_>>()})
                .to_string()
                .into_bytes(),
            vec![],
            413,
            "too_many_events",
        ),
        ("unknown encoding", b"{}".to_vec(), vec![("content-encoding", "br")], 415, "unsupported_encoding"),
        (
            "disallowed origin",
            json!({"batch": [event]}).to_string().into_bytes(),
            vec![("origin", "https://evil.example")],
            403,
            "origin_not_allowed",
        ),
    ];
    for (name, body, headers, status, kind) in cases {
        let (got, response) = send(body, &headers).await;
        assert_eq!((got, response["error"].as_str()), (status, Some(kind)), "{name}: {response}");
        assert!(response["message"].as_str().is_some_and(|m| !m.is_empty()), "{name} names the problem");
    }
    // The answer describes the first 100 rejected events and counts them all.
    let (status, response) =
        post_json(&batch_url, &json!({"batch": vec![json!({"type": "track", "event": "E"}); 1_000]})).await;
    assert_eq!((status, response["rejectedCount"].as_u64()), (400, Some(1_000)), "{response}");
    assert_eq!(response["rejected"].as_array().map(Vec::len), Some(100));
    assert_eq!(response["rejected"][99]["index"], 99);
    let big_event = json!({"batch": [{"type": "track", "event": "E", "anonymousId": "a", "properties": {"blob": "x".repeat(40_000)}}]});
    let (status, response) = post_json(&batch_url, &big_event).await;
    assert_eq!((status, response["rejected"][0]["kind"].as_str()), (413, Some("event_too_large")), "{response}");
    let unknown = client()
        .post(&batch_url)
        .basic_auth("nope", Some(""))
        .json(&json!({"batch": [event]}))
        .send()
        .await
        .expect("req");
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.json::<Value>().await.expect("json")["error"], "unknown_write_key");
    let keyless = client().post(&batch_url).json(&json!({"batch": [event]})).send().await.expect("req");
    assert_eq!(keyless.status(), 401);

    // After all that, a valid event from an allowed origin still goes through, and it is the
    // only thing in the topic.
    let ok = client()
        .post(&batch_url)
        .basic_auth(WRITE_KEY, Some(""))
        .header("origin", ALLOWED_ORIGIN)
        .json(&json!({"batch": [{"type": "track", "event": "Survivor", "anonymousId": "a"}]}))
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some(ALLOWED_ORIGIN));
    let messages = read_exactly(&s.tansu.bootstrap(), &s.raw, 1, READ_TIMEOUT).await;
    assert_eq!(messages[0].value["event"], "Survivor");
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_spool_a_stopped_broker_gives_503_with_retry_after() {
    let mut s = setup_with(|c| c.spool.enabled = false).await;
    let body = json!({"batch": [{"type": "track", "event": "Product Viewed", "anonymousId": "a1", "properties": {"product_id": "p1"}}]});
    let (status, _) = post_json(&format!("{}/v1/batch", s.url), &body).await;
    assert_eq!(status, 200, "works while the broker runs");
    s.tansu.stop();

    let response = client()
        .post(format!("{}/v1/batch", s.url))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&body)
        .send()
        .await
        .expect("req");
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some(), "503 carries Retry-After");
    assert_eq!(response.json::<Value>().await.expect("json")["error"], "kafka_unavailable");
    // Readiness follows within a few probe intervals.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ready = client().get(format!("{}/readyz", s.url)).send().await.expect("req").status();
        if ready == 503 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "readyz still {ready} 15 s after the broker stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = client().get(format!("{}/healthz", s.url)).send().await.expect("req");
    assert_eq!(health.status(), 200, "liveness does not depend on Kafka");
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_refuses_to_start_without_its_topics() {
    let tansu = Tansu::start();
    let raw = unique("events.raw");
    let dlq = unique("events.dlq");
    create_topics(&tansu.bootstrap(), &[(&dlq, 1)]).await;
    let error =
        clickstream_gateway::start(gateway_config(&tansu.bootstrap(), &raw, &dlq)).await.expect_err("must refuse");
    let message = format!("{error:#}");
    assert!(message.contains(&raw) && message.contains("topics apply"), "{message}");
    assert!(!message.contains(&dlq), "only the missing topic is named: {message}");
}
