//! The `dev` demo: a short shopping session from the sample catalog, sent through the gateway
//! over HTTP and read back enriched, so a newcomer sees the whole path work.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use serde_json::{json, Value};

pub const CATALOG: &str = include_str!("../../data/products.jsonl");

pub async fn run(gateway_url: &str, write_key: &str, bootstrap: &str, enriched_topic: &str) -> anyhow::Result<()> {
    let products: Vec<Value> = CATALOG.lines().take(3).map(serde_json::from_str).collect::<Result<_, _>>()?;
    let visitor = format!("demo-{}", std::process::id());
    let context = json!({"page": {"url": "https://shop.example/?utm_source=newsletter&utm_medium=email", "referrer": "https://www.google.com/"}});
    let mut batch = vec![json!({"type": "page", "name": "Home", "anonymousId": visitor, "context": context})];
    for product in &products {
        batch.push(json!({"type": "track", "event": "Product Viewed", "anonymousId": visitor,
            "properties": {"product_id": product["id"], "price": product["price"]}}));
    }
    batch.push(json!({"type": "track", "event": "Product Added", "anonymousId": visitor,
        "properties": {"product_id": products[0]["id"], "quantity": 1}}));
    let ids: HashSet<String> = (0..batch.len()).map(|i| format!("{visitor}-{i}")).collect();
    for (i, event) in batch.iter_mut().enumerate() {
        event["messageId"] = json!(format!("{visitor}-{i}"));
    }

    let response = reqwest::Client::new()
        .post(format!("{gateway_url}/v1/batch"))
        .basic_auth(write_key, Some(""))
        .json(&json!({"batch": batch, "sentAt": chrono::Utc::now().to_rfc3339()}))
        .send()
        .await
        .context("posting the demo batch")?;
    println!("  demo: POST /v1/batch with {} events -> {} {}", ids.len(), response.status(), response.text().await?);

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("clickstream-demo-{visitor}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()?;
    consumer.subscribe(&[enriched_topic])?;
    let mut missing = ids;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !missing.is_empty() {
        let message = tokio::time::timeout_at(deadline, consumer.recv()).await.context("timed out reading back")??;
        let event: Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
        let id = event["messageId"].as_str().unwrap_or_default().to_owned();
        if missing.remove(&id) {
            println!(
                "  demo: read back {}[{}]@{}  {} {:<16} product={} session={}#{} referrer={} campaign={}",
                message.topic(),
                message.partition(),
                message.offset(),
                event["type"].as_str().unwrap_or_default(),
                event["event"].as_str().or(event["name"].as_str()).unwrap_or_default(),
                event["enrichment"]["product"]["name"].as_str().unwrap_or("-"),
                event["enrichment"]["session"]["id"].as_str().unwrap_or_default(),
                event["enrichment"]["session"]["sequence"],
                event["enrichment"]["referrer"]["medium"].as_str().unwrap_or_default(),
                event["enrichment"]["campaign"]["source"].as_str().unwrap_or("-"),
            );
        }
    }
    println!("  demo: every event came back enriched from Kafka. Ctrl-C stops dev.\n");
    Ok(())
}
