//! The event-time product join against Tansu: a replay after a price change gets the old
//! price, events before a product's first version miss, retention drops old versions,
//! Debezium's `source.ts_ms` dates a change, a Debezium precise-decimal price reaches events as
//! its number, and a restart rebuilds the history from the changelog topic.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clickstream_enricher::config::Guarantee;
use clickstream_schema::format_timestamp;
use clickstream_tests::enricher::{
    keyed, produce, produce_at, start_enricher, stop_enricher, track, wait_until, EnricherTopics,
};
use clickstream_tests::kafka::{read_exactly, ReadBack};
use clickstream_tests::tansu::Tansu;
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn iso(ms: i64) -> String {
    format_timestamp(chrono::DateTime::from_timestamp_millis(ms).expect("valid time"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn view(message_id: &str, product_id: &str, at_ms: i64) -> Value {
    track(message_id, "visitor", "Product Viewed", json!({"product_id": product_id}), &iso(at_ms))
}

fn mug(price: f64) -> Option<Value> {
    Some(json!({"id": "p1", "name": "Mug", "price": price}))
}

/// The `enrichment.product` of each event read back, by `messageId`.
fn products_by_id(messages: &[ReadBack]) -> HashMap<String, Value> {
    messages
        .iter()
        .map(|m| {
            (m.value["messageId"].as_str().unwrap_or_default().to_owned(), m.value["enrichment"]["product"].clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_a_price_change_gets_the_old_price_and_earlier_events_miss() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 2).await;
    let now = now_ms();
    let (first_version, second_version) = (now - 2 * HOUR, now - HOUR);
    produce_at(&bootstrap, &topics.products, &[(Some("p1".into()), mug(10.0))], first_version);
    let enricher = start_enricher(topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent)).await;

    let before = vec![view("m1", "p1", now - 90 * MINUTE), view("m0", "p1", now - 3 * HOUR)];
    produce(&bootstrap, &topics.raw, &keyed(&before));
    let products = products_by_id(&read_exactly(&bootstrap, &topics.enriched, 2, Duration::from_secs(30)).await);
    assert_eq!(products["m1"]["price"], 10.0);
    let version = &products["m1"]["_version"];
    assert_eq!(version["validFrom"], iso(first_version));
    assert_eq!((version["basis"].clone(), version["offset"].clone()), (json!("record_ts"), json!(0)));
    assert_eq!(products["m0"], Value::Null, "an event before the product's first version misses");

    // The price changes mid-stream; then current events, and a replay of older ones.
    produce_at(&bootstrap, &topics.products, &[(Some("p1".into()), mug(12.0))], second_version);
    let table = enricher.products.clone();
    wait_until("the price change", || table.get("p1").is_some_and(|row| row["price"] == 12.0)).await;
    let after = vec![
        view("m2", "p1", now - 30 * MINUTE),
        view("m1-replayed", "p1", now - 90 * MINUTE),
        view("m0-replayed", "p1", now - 3 * HOUR),
    ];
    produce(&bootstrap, &topics.raw, &keyed(&after));
    let products = products_by_id(&read_exactly(&bootstrap, &topics.enriched, 5, Duration::from_secs(30)).await);
    assert_eq!(products["m2"]["price"], 12.0);
    assert_eq!(products["m2"]["_version"]["validFrom"], iso(second_version));
    assert_eq!(products["m1-replayed"]["price"], 10.0, "the replay gets the price valid when it happened");
    assert_eq!(products["m1-replayed"]["_version"]["offset"], 0);
    assert_eq!(products["m0-replayed"], Value::Null, "never a later version");
    assert_eq!(enricher.metrics.join_misses.load(Ordering::Relaxed), 2);
    // The table's size, as /metrics exports it.
    let exported: HashMap<String, f64> =
        enricher.metrics.snapshot().into_iter().map(|(name, _, v)| (name, v)).collect();
    assert_eq!(exported["enricher_product_table_products"], 1.0);
    assert_eq!(exported["enricher_product_table_versions"], 2.0);
    assert_eq!(exported["enricher_product_changelog_written_total"], 1.0);

    // The superseded version is in the changelog, timestamped with when it ended.
    let changelog = read_exactly(&bootstrap, &topics.product_versions, 1, Duration::from_secs(20)).await;
    assert_eq!(changelog[0].key.as_deref(), Some(format!(r#"{{"id":"p1","validFrom":{first_version}}}"#).as_str()));
    assert_eq!(
        (changelog[0].value["validTo"].clone(), changelog[0].value["row"]["price"].clone()),
        (json!(second_version), json!(10.0))
    );
    stop_enricher(enricher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_versions_superseded_before_it() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 2).await;
    let now = now_ms();
    for (price, valid_from) in [(8.0, now - 5 * HOUR), (9.0, now - 4 * HOUR), (10.0, now - 30 * MINUTE)] {
        produce_at(&bootstrap, &topics.products, &[(Some("p1".into()), mug(price))], valid_from);
    }
    let mut config = topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent);
    config.enricher.products.history_retention_secs = 3600;
    let enricher = start_enricher(config).await;
    let events = vec![
        view("in-8", "p1", now - 270 * MINUTE),
        view("in-9", "p1", now - 3 * HOUR),
        view("in-10", "p1", now - MINUTE),
    ];
    produce(&bootstrap, &topics.raw, &keyed(&events));
    let products = products_by_id(&read_exactly(&bootstrap, &topics.enriched, 3, Duration::from_secs(30)).await);
    // 8.0 was superseded 4 h ago, past the 1 h retention; 9.0 only 30 minutes ago.
    assert_eq!(products["in-8"], Value::Null, "the version past retention is gone");
    assert_eq!(products["in-9"]["price"], 9.0, "a version that began before the cutoff stays while it was valid since");
    assert_eq!(products["in-10"]["price"], 10.0);
    let stats = &enricher.metrics.product_table;
    assert_eq!(stats.versions.load(Ordering::Relaxed), 2);
    assert_eq!(stats.versions_expired.load(Ordering::Relaxed), 1);
    let changelog = read_exactly(&bootstrap, &topics.product_versions, 1, Duration::from_secs(20)).await;
    assert_eq!(changelog[0].value["row"]["price"], 9.0, "only the version within retention is persisted");
    stop_enricher(enricher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_source_ts_dates_the_change() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 2).await;
    // Within the 7-day history retention: two and three hours ago, on the hour.
    let created = now_ms() / HOUR * HOUR - 3 * HOUR;
    let updated = created + HOUR;
    let create = json!({"before": null, "after": {"id": 7, "name": "Lamp", "price": 19.99}, "op": "c",
        "source": {"ts_ms": created, "table": "products"}, "ts_ms": now_ms()});
    let update = json!({"schema": {"type": "struct"}, "payload": {"before": {"id": 7}, "after": {"id": 7, "name": "Lamp", "price": 24.99},
        "op": "u", "source": {"ts_ms": updated, "table": "products"}, "ts_ms": now_ms()}});
    // Produced now: only `source.ts_ms` can place the rows hours earlier.
    produce(
        &bootstrap,
        &topics.products,
        &[(Some(r#"{"id":7}"#.into()), Some(create)), (Some(r#"{"id":7}"#.into()), Some(update))],
    );
    let enricher = start_enricher(topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent)).await;
    let events = vec![
        view("between", "7", created + 30 * MINUTE),
        view("after", "7", updated + 30 * MINUTE),
        view("before", "7", created - HOUR),
    ];
    produce(&bootstrap, &topics.raw, &keyed(&events));
    let products = products_by_id(&read_exactly(&bootstrap, &topics.enriched, 3, Duration::from_secs(30)).await);
    assert_eq!(products["between"]["price"], 19.99);
    assert_eq!(
        products["between"]["_version"],
        json!({"validFrom": iso(created), "basis": "source_ts", "partition": 0, "offset": 0})
    );
    assert_eq!(products["after"]["price"], 24.99);
    assert_eq!(products["after"]["_version"]["validFrom"], iso(updated));
    assert_eq!(products["before"], Value::Null);
    stop_enricher(enricher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rebuilds_the_history_from_the_changelog() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 2).await;
    let now = now_ms();
    let (first_version, second_version) = (now - 2 * HOUR, now - HOUR);
    produce_at(&bootstrap, &topics.products, &[(Some("p1".into()), mug(10.0))], first_version);
    produce_at(&bootstrap, &topics.products, &[(Some("p1".into()), mug(12.0))], second_version);
    let enricher = start_enricher(topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent)).await;
    assert_eq!(enricher.products.versions(), 2);
    let written = enricher.metrics.product_table.clone();
    wait_until("the changelog write", || written.changelog_written.load(Ordering::Relaxed) == 1).await;
    stop_enricher(enricher).await;

    // Compaction leaves the products topic with each product's last row only. Tansu does not
    // compact, so the restarted enricher reads a products topic that holds just that row.
    let mut restarted = EnricherTopics::new();
    restarted.product_versions = topics.product_versions.clone();
    restarted.create(&bootstrap, 2).await;
    produce_at(&bootstrap, &restarted.products, &[(Some("p1".into()), mug(12.0))], second_version);
    let enricher = start_enricher(restarted.config(&bootstrap, Guarantee::ExactlyOnceIdempotent)).await;
    assert_eq!(enricher.metrics.product_table.changelog_restored.load(Ordering::Relaxed), 1);
    let events = vec![
        view("old", "p1", now - 90 * MINUTE),
        view("new", "p1", now - 30 * MINUTE),
        view("before", "p1", now - 3 * HOUR),
    ];
    produce(&bootstrap, &restarted.raw, &keyed(&events));
    let products = products_by_id(&read_exactly(&bootstrap, &restarted.enriched, 3, Duration::from_secs(30)).await);
    assert_eq!(products["old"]["price"], 10.0, "the old version came back from the changelog");
    assert_eq!(products["old"]["_version"]["validFrom"], iso(first_version));
    assert_eq!(products["new"]["price"], 12.0);
    assert_eq!(products["before"], Value::Null);
    assert_eq!(enricher.products.versions(), 2);
    // Nothing new was superseded, so nothing was written again.
    assert_eq!(enricher.metrics.product_table.changelog_written.load(Ordering::Relaxed), 0);
    stop_enricher(enricher).await;
}

/// The Debezium PostgreSQL connector's records with its default settings (schema wrapper,
/// precise decimals, micro timestamps, struct keys), as in enricher/tests/fixtures.
fn debezium_postgres_records() -> Vec<(Option<String>, Option<Value>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../enricher/tests/fixtures/debezium-postgres/products.jsonl");
    let text = std::fs::read_to_string(path).expect("fixture");
    text.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("fixture line");
            let value = Some(record["value"].clone()).filter(|value| !value.is_null());
            (Some(record["key"].to_string()), value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debezium_precise_decimal_price_reaches_events_through_the_gateway() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 2).await;
    // The snapshot read of the chair and the insert of the lamp: numeric(10,2) 1200.00 and 19.99.
    let records = debezium_postgres_records();
    produce(&bootstrap, &topics.products, &records[..2]);
    let enricher = start_enricher(topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent)).await;
    let gateway = clickstream_gateway::start(clickstream_tests::gateway_config(&bootstrap, &topics.raw, &topics.dlq))
        .await
        .expect("gateway");
    let batch = json!({"batch": [
        {"type": "track", "event": "Product Viewed", "messageId": "lamp", "anonymousId": "visitor", "properties": {"product_id": "1"}},
        {"type": "track", "event": "Product Viewed", "messageId": "chair", "anonymousId": "visitor", "properties": {"product_id": 2}},
    ]});
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/batch", gateway.addr))
        .basic_auth(clickstream_tests::WRITE_KEY, Some(""))
        .json(&batch)
        .send()
        .await
        .expect("batch");
    assert_eq!(response.status(), 200);

    let enriched = read_exactly(&bootstrap, &topics.enriched, 2, Duration::from_secs(30)).await;
    let lamp = enriched.iter().find(|m| m.value["messageId"] == "lamp").expect("lamp event");
    let product = &lamp.value["enrichment"]["product"];
    assert_eq!(product["price"].to_string(), "19.99", "a JSON number with the column's digits: {product}");
    assert_eq!(product["discount"], -1.5);
    assert_eq!(product["created_at"], "2026-01-02T10:00:00.123456Z");
    assert_eq!(product["_version"]["basis"], "source_ts");
    let chair = enriched.iter().find(|m| m.value["messageId"] == "chair").expect("chair event");
    assert_eq!(chair.value["enrichment"]["product"]["price"], 1200.0);
    assert_eq!(enricher.metrics.product_table.undecodable_columns.load(Ordering::Relaxed), 0);
    gateway.shutdown().await;
    stop_enricher(enricher).await;
}
