//! `clickstream products load` publishes a CSV catalog to the products topic, keyed by id,
//! with numbers and booleans typed, against Tansu.

use std::process::Command;
use std::time::Duration;

use clickstream_tests::kafka::{create_topics, read_exactly};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::unique;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_catalog_lands_keyed_by_id() {
    let tansu = Tansu::start();
    let topic = unique("products");
    create_topics(&tansu.bootstrap(), &[(&topic, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let catalog = dir.path().join("catalog.csv");
    std::fs::write(&catalog, "id,name,price,in_stock\np1,Mug,9.5,true\np2,\"Cup, large\",12,false\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["products", "load"])
        .arg(&catalog)
        .args(["--kafka-brokers", &tansu.bootstrap(), "--set", &format!("topics.products={topic}")])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("published 2 products to {topic}")));
    let rows = read_exactly(&tansu.bootstrap(), &topic, 2, Duration::from_secs(20)).await;
    assert_eq!(rows[0].key.as_deref(), Some("p1"));
    assert_eq!(rows[0].value, json!({"id": "p1", "name": "Mug", "price": 9.5, "in_stock": true}));
    assert_eq!(rows[1].key.as_deref(), Some("p2"));
    assert_eq!(rows[1].value["name"], "Cup, large");
    assert_eq!(rows[1].value["price"], 12);
    let loaded_at = rows[0].timestamp_ms.expect("a timestamp");
    assert!((chrono::Utc::now().timestamp_millis() - loaded_at).abs() < 60_000, "valid from now by default");

    // A catalog valid since a date: the records carry it, for the enricher's event-time join.
    let dated = unique("products");
    create_topics(&tansu.bootstrap(), &[(&dated, 1)]).await;
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["products", "load", "--valid-from", "2026-01-01T00:00:00Z"])
        .arg(&catalog)
        .args(["--kafka-brokers", &tansu.bootstrap(), "--set", &format!("topics.products={dated}")])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows = read_exactly(&tansu.bootstrap(), &dated, 2, Duration::from_secs(20)).await;
    assert!(rows.iter().all(|r| r.timestamp_ms == Some(1_767_225_600_000)), "{rows:?}");
    let bad = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["products", "load", "--valid-from", "yesterday"])
        .arg(&catalog)
        .args(["--kafka-brokers", &tansu.bootstrap()])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--valid-from yesterday"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["products", "load", "/nonexistent/catalog.jsonl", "--kafka-brokers", &tansu.bootstrap()])
        .output()
        .expect("run");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/catalog.jsonl"));
}
