//! OTLP export: with an endpoint configured, a traced ingest request's spans (ingest, parse,
//! validate, produce, delivery) and the metrics reach the collector over OTLP/HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal OTLP/HTTP collector: records each POST's path and protobuf body, answers 200.
fn collector() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let received: Received = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    sink.lock().expect("lock").push((path, body));
                    let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_the_otlp_collector() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 1), (&dlq, 1)]).await;
    let (endpoint, received) = collector();
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.telemetry.otlp_endpoint = endpoint;
    config.telemetry.trace_sample_ratio = 1.0;
    config.telemetry.otlp_export_interval_ms = 200;
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let body = serde_json::json!({"batch": [{"type": "track", "event": "Traced", "anonymousId": "a1"}]});
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/batch", gateway.addr))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 200);
    // Shutdown flushes the span batch and the last metrics.
    gateway.shutdown().await;

    let received = received.lock().expect("lock").clone();
    let traces: Vec<&Vec<u8>> = received.iter().filter(|(p, _)| p == "/v1/traces").map(|(_, b)| b).collect();
    let metrics: Vec<&Vec<u8>> = received.iter().filter(|(p, _)| p == "/v1/metrics").map(|(_, b)| b).collect();
    let paths: Vec<&str> = received.iter().map(|(p, _)| p.as_str()).collect();
    assert!(!traces.is_empty(), "no spans exported; requests seen: {paths:?}");
    for span in ["ingest", "parse", "validate", "produce", "delivery", "/v1/batch"] {
        assert!(traces.iter().any(|b| contains(b, span)), "span or attribute {span:?} missing from the export");
    }
    assert!(
        metrics.iter().any(|b| contains(b, "clickstream.events.accepted") && contains(b, "clickstream-gateway")),
        "no metrics export with clickstream.events.accepted; requests seen: {paths:?}"
    );
}
