//! The admin port after real traffic through a gateway on Tansu: every metric family the
//! operations issue names, with values that follow from the requests sent; health and
//! readiness there; suppressed identities dropped and counted.

use std::collections::BTreeMap;
use std::time::Duration;

use clickstream_tests::kafka::{create_topics, read_exactly};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};
use serde_json::{json, Value};

/// Prometheus text as `series -> value`, where a series is the name with its labels as printed.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the one series named `name` whose labels include every `labels` pair.
fn value(metrics: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = metrics
        .iter()
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels.iter().all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "expected one series {name} with {labels:?}, found {found:?} in {metrics:#?}");
    found[0]
}

/// Series of the Grafana dashboard this gateway test cannot produce, with the reason.
const NOT_IN_THIS_TEST: &[(&str, &str)] = &[
    ("clickstream_rate_limited_total", "appears with the first 429"),
    ("clickstream_shed_total", "appears with the first request shed at the in-flight cap"),
    // Exported by the enricher's admin port (checked in tests/tests/enricher_tansu.rs).
    ("clickstream_kafka_consumer_lag", "a consumer's statistics: the enricher's"),
];

/// Every `clickstream_*` series that deploy/grafana/clickstream.json queries is one the
/// gateway really exports (`enricher_*` ones belong to the enricher).
fn dashboard_queries_only_real_series(metrics: &BTreeMap<String, f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/clickstream.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() > 15, "the dashboard lost its queries");
    let exported: std::collections::BTreeSet<&str> = metrics.keys().filter_map(|s| s.split('{').next()).collect();
    for expr in exprs {
        for (start, _) in expr.match_indices("clickstream_") {
            let name: String = expr[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if NOT_IN_THIS_TEST.iter().any(|(n, _)| *n == name) {
                continue;
            }
            assert!(
                exported.contains(name.as_str()),
                "the dashboard queries {name}, which the gateway does not export"
            );
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> u16 {
    client.post(url).basic_auth(WRITE_KEY, Some("")).json(body).send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_metrics_report_real_traffic() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 2), (&dlq, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let suppression = dir.path().join("suppressed.txt");
    std::fs::write(&suppression, "# erasure request 42\nuserId:erased-user\n").expect("suppression file");
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.producer.statistics_interval_ms = 200;
    config.privacy.suppression_file = suppression.display().to_string();
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let (url, admin) = (format!("http://{}", gateway.addr), format!("http://{}", gateway.admin_addr.expect("admin")));
    let client = reqwest::Client::new();

    // 3 batches of 2 valid events; one batch with 1 valid and 1 invalid event; 2 single
    // events; a retry of an already delivered messageId; an event of a suppressed user;
    // a request to a path that must never become a label.
    for i in 0..3 {
        let batch = json!({"batch": [
            {"type": "track", "event": "Viewed", "anonymousId": format!("a{i}")},
            {"type": "page", "name": "Home", "userId": format!("u{i}")},
        ]});
        assert_eq!(post(&client, &format!("{url}/v1/batch"), &batch).await, 200);
    }
    let mixed =
        json!({"batch": [{"type": "track", "event": "Ok", "userId": "u9"}, {"type": "track", "event": "NoId"}]});
    assert_eq!(post(&client, &format!("{url}/v1/batch"), &mixed).await, 200);
    let single = json!({"type": "track", "event": "Clicked", "anonymousId": "a7", "messageId": "retry-me"});
    assert_eq!(post(&client, &format!("{url}/v1/t"), &single).await, 200);
    assert_eq!(post(&client, &format!("{url}/v1/t"), &single).await, 200, "a retry is answered as a success");
    let erased = json!({"type": "track", "event": "Secret", "userId": "erased-user", "anonymousId": "a-erased"});
    assert_eq!(
        post(&client, &format!("{url}/v1/track"), &erased).await,
        200,
        "suppressed events are answered as accepted"
    );
    let missing = client.get(format!("{url}/private/customer-123")).send().await.expect("404");
    assert_eq!(missing.status().as_u16(), 404);

    // 8 events reached events.raw (the retry and the suppressed event did not), 1 the DLQ.
    let events = read_exactly(&tansu.bootstrap(), &raw, 8, Duration::from_secs(20)).await;
    assert!(events.iter().all(|e| e.value["userId"] != "erased-user"), "a suppressed event reached Kafka");
    read_exactly(&tansu.bootstrap(), &dlq, 1, Duration::from_secs(20)).await;

    // librdkafka statistics arrive every 200 ms; wait until a broker RTT has been measured.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let text = client.get(format!("{admin}/metrics")).send().await.expect("scrape").text().await.expect("text");
        let metrics = parse(&text);
        let rtt_seen =
            metrics.iter().any(|(s, v)| s.starts_with("clickstream_kafka_broker_rtt_avg_seconds{") && *v > 0.0);
        if rtt_seen {
            assert!(!text.contains("customer-123") && !text.contains("private"), "a raw path became a label:\n{text}");
            assert!(!text.contains("erased-user") && !text.contains("a7"), "user data became a label:\n{text}");
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "no broker RTT in the metrics within 15 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let requests = |route: &str, status: &str| {
        value(&metrics, "clickstream_http_requests_total", &[("route", route), ("status", status)])
    };
    assert_eq!(requests("/v1/batch", "200"), 4.0);
    assert_eq!(requests("/v1/{type}", "200"), 3.0);
    assert_eq!(requests("unmatched", "404"), 1.0);
    assert_eq!(value(&metrics, "clickstream_http_request_duration_seconds_count", &[("route", "/v1/batch")]), 4.0);
    assert_eq!(value(&metrics, "clickstream_events_accepted_total", &[]), 8.0);
    assert_eq!(value(&metrics, "clickstream_events_rejected_total", &[("reason", "missing_identity")]), 1.0);
    assert_eq!(value(&metrics, "clickstream_events_suppressed_total", &[]), 1.0);
    assert_eq!(value(&metrics, "clickstream_dedup_drops_total", &[]), 1.0);
    // One produce call per delivered request: 4 batches and 1 single event.
    let produced = value(&metrics, "clickstream_kafka_produce_duration_seconds_count", &[("outcome", "delivered")]);
    assert_eq!(produced, 5.0);
    assert!(value(&metrics, "clickstream_kafka_produce_duration_seconds_sum", &[("outcome", "delivered")]) > 0.0);
    assert_eq!(value(&metrics, "clickstream_spool_events", &[]), 0.0);
    assert_eq!(value(&metrics, "clickstream_spool_bytes", &[]), 0.0);
    assert_eq!(value(&metrics, "clickstream_spool_oldest_age_seconds", &[]), 0.0);
    assert_eq!(value(&metrics, "clickstream_kafka_queue_messages", &[("client", "producer")]), 0.0);
    let broker = tansu.bootstrap();
    let up = metrics.iter().find(|(s, _)| s.starts_with("clickstream_kafka_broker_up{") && s.contains(&broker));
    assert_eq!(up.map(|(_, v)| *v), Some(1.0), "broker {broker} up: {metrics:#?}");

    dashboard_queries_only_real_series(&metrics);

    let health = client.get(format!("{admin}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let ready: Value = client.get(format!("{admin}/readyz")).send().await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["status"], "ok");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_readiness_follows_the_broker() {
    let mut tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 1), (&dlq, 1)]).await;
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.spool.enabled = false;
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let admin = format!("http://{}", gateway.admin_addr.expect("admin"));
    let client = reqwest::Client::new();
    let status = |client: reqwest::Client, admin: String| async move {
        client.get(format!("{admin}/readyz")).send().await.expect("readyz").status().as_u16()
    };
    assert_eq!(status(client.clone(), admin.clone()).await, 200);
    tansu.stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while status(client.clone(), admin.clone()).await != 503 {
        assert!(tokio::time::Instant::now() < deadline, "admin /readyz never answered 503 with the broker down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gateway.shutdown().await;
}
