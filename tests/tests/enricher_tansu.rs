//! The enricher against Tansu: the product join through updates, tombstones and Debezium
//! changes; user-agent, referrer and UTM fields; sessions split at the inactivity gap;
//! windows with in-order, late-within-grace and too-late events; and dead letters.

use std::collections::HashMap;
use std::time::Duration;

use clickstream_enricher::config::{Guarantee, ProductJoin};
use std::sync::Arc;

use clickstream_enricher::metrics::EnricherMetrics;
use clickstream_tests::enricher::{
    keyed, produce, produce_at, start_enricher, stop_enricher, track, wait_until, EnricherTopics,
};
use clickstream_tests::kafka::read_exactly;
use clickstream_tests::tansu::Tansu;
use serde_json::{json, Value};

fn by_message_id(messages: &[clickstream_tests::kafka::ReadBack]) -> HashMap<String, Value> {
    messages.iter().map(|m| (m.value["messageId"].as_str().unwrap_or_default().to_owned(), m.value.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_join_follows_updates_tombstones_and_debezium() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 3).await;
    let wrapped = json!({"schema": {"type": "struct"}, "payload": {"before": null, "after": {"id": "p2", "name": "Lamp", "price": 19.99, "currency": "EUR"}, "op": "c"}});
    let bare = json!({"before": null, "after": {"id": "p3", "name": "Rug", "price": 120}, "op": "r"});
    produce(
        &bootstrap,
        &topics.products,
        &[
            (Some("p1".into()), Some(json!({"id": "p1", "name": "Mug", "price": 9.5, "currency": "USD"}))),
            (Some(r#"{"id":"p2"}"#.into()), Some(wrapped)),
            (Some(r#"{"id":"p3"}"#.into()), Some(bare)),
        ],
    );
    let mut config = topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent);
    // The events are from January and the products from now: this test is about the
    // latest-row join (the event-time join has tests/tests/enricher_versioned.rs).
    config.enricher.products.join = ProductJoin::Latest;
    config.enricher.admin.listen = "127.0.0.1:0".into();
    config.kafka.properties.insert("statistics.interval.ms".into(), "1000".into());
    let metrics = Arc::new(EnricherMetrics::default());
    let telemetry = clickstream_enricher::admin::telemetry(&config, &metrics).expect("telemetry");
    let admin =
        clickstream_enricher::admin::serve(&config, telemetry, metrics.clone()).await.expect("admin").expect("on");
    let admin_url = format!("http://{}", admin.addr);
    let http = reqwest::Client::new();
    let ready = http.get(format!("{admin_url}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 503, "not ready before the product table is loaded");
    let enricher = tokio::task::spawn_blocking(move || clickstream_enricher::start_with_metrics(config, metrics))
        .await
        .expect("join")
        .expect("enricher starts");
    assert_eq!(enricher.products.len(), 3, "the table is bootstrapped before clicks");

    let at = "2026-01-01T10:00:00.000Z";
    let mut first = track("m1", "v1", "Product Viewed", json!({"product_id": "p1"}), at);
    first["context"] = json!({
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "page": {"url": "https://shop.example/p/1?utm_source=spring&utm_medium=email&utm_campaign=sale", "referrer": "https://www.google.com/search?q=mug"},
        "ip": "198.51.100.23"
    });
    let mut bot = track("m2", "v2", "Product Viewed", json!({"product_id": "p2"}), at);
    bot["context"] = json!({"userAgent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "page": {"url": "https://shop.example/p/2", "referrer": "https://t.co/xyz"}});
    let events = vec![
        first,
        bot,
        track("m3", "v3", "Product Viewed", json!({"product_id": "p3"}), at),
        track("m4", "v4", "Product Viewed", json!({"product_id": "p404"}), at),
    ];
    produce(&bootstrap, &topics.raw, &keyed(&events));
    produce(&bootstrap, &topics.raw, &[(Some("v5".into()), Some(json!("not an event")))]);
    let enriched = by_message_id(&read_exactly(&bootstrap, &topics.enriched, 4, Duration::from_secs(30)).await);
    let e = |id: &str| enriched[id]["enrichment"].clone();
    assert_eq!((e("m1")["product"]["name"].clone(), e("m1")["product"]["price"].clone()), (json!("Mug"), json!(9.5)));
    assert_eq!(e("m2")["product"]["name"], "Lamp");
    assert_eq!(e("m2")["product"]["currency"], "EUR");
    assert_eq!(e("m3")["product"]["name"], "Rug");
    assert_eq!(e("m4")["product"], Value::Null);
    assert_eq!(e("m1")["userAgent"]["deviceClass"], "mobile");
    assert_eq!(e("m1")["userAgent"]["isBot"], false);
    assert_eq!(e("m2")["userAgent"]["isBot"], true);
    assert_eq!(e("m1")["referrer"], json!({"medium": "search", "source": "Google", "host": "www.google.com"}));
    assert_eq!(e("m2")["referrer"]["medium"], "social");
    assert_eq!(e("m3")["referrer"]["medium"], "direct");
    assert_eq!(e("m1")["campaign"], json!({"source": "spring", "medium": "email", "name": "sale"}));
    assert_eq!(enriched["m1"]["context"]["ip"], "198.51.100.0");
    assert_eq!(enricher.metrics.join_misses.load(std::sync::atomic::Ordering::Relaxed), 1);

    let dead = read_exactly(&bootstrap, &topics.dlq, 1, Duration::from_secs(10)).await;
    assert_eq!(dead[0].value["reasonKind"], "not_an_object");
    assert_eq!(dead[0].value["topic"], topics.raw.as_str());
    assert_eq!(dead[0].value["payload"], "not an event");
    assert!(dead[0].value["offset"].is_i64());

    // The admin port exports the same counts.
    wait_until("readiness", || enricher.metrics.ready.load(std::sync::atomic::Ordering::Relaxed) == 1).await;
    assert_eq!(http.get(format!("{admin_url}/readyz")).send().await.expect("readyz").status(), 200);
    let scrape = http.get(format!("{admin_url}/metrics")).send().await.expect("metrics").text().await.expect("text");
    let value = |name: &str| {
        scrape
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{scrape}"))
    };
    assert_eq!(value("enricher_events_enriched_total"), 4.0);
    assert_eq!(value("enricher_join_misses_total"), 1.0);
    assert_eq!(value("enricher_dead_letters_total"), 1.0);
    // Five raw records, and the four product activities read back from the repartition topic
    // in batches (one record per partition and window).
    assert_eq!(value("enricher_activities_repartitioned_total"), 4.0);
    let batches = value("enricher_repartition_records_total");
    assert!((1.0..=4.0).contains(&batches), "{batches} repartition records");
    assert_eq!(value("enricher_records_consumed_total"), 5.0 + batches);
    assert_eq!(value("enricher_ready"), 1.0);
    // librdkafka's own view, every second here: the consumer has read every raw record.
    let lag_series = |scrape: &str| -> Vec<f64> {
        scrape
            .lines()
            .filter(|l| {
                l.starts_with("clickstream_kafka_consumer_lag{") && l.contains(&format!("topic=\"{}\"", topics.raw))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let scrape =
            http.get(format!("{admin_url}/metrics")).send().await.expect("metrics").text().await.expect("text");
        let lags = lag_series(&scrape);
        if lags.len() == 3 && lags.iter().all(|lag| *lag == 0.0) {
            assert!(scrape.contains("clickstream_kafka_broker_up{"), "{scrape}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no consumer lag of 0 for the 3 raw partitions: {lags:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    admin.shutdown().await;

    // Mid-stream: a price change, a tombstone and a Debezium delete.
    let debezium_delete =
        json!({"schema": {}, "payload": {"before": {"id": "p3", "name": "Rug"}, "after": null, "op": "d"}});
    produce(
        &bootstrap,
        &topics.products,
        &[
            (Some("p1".into()), Some(json!({"id": "p1", "name": "Mug", "price": 11.0, "currency": "USD"}))),
            (Some("p2".into()), None),
            (Some(r#"{"id":"p3"}"#.into()), Some(debezium_delete)),
        ],
    );
    let table = enricher.products.clone();
    wait_until("the product changes", || {
        table.get("p2").is_none() && table.get("p3").is_none() && table.get("p1").is_some_and(|r| r["price"] == 11.0)
    })
    .await;
    let later = vec![
        track("m5", "v1", "Product Viewed", json!({"product_id": "p1"}), at),
        track("m6", "v2", "Product Viewed", json!({"product_id": "p2"}), at),
        track("m7", "v3", "Product Viewed", json!({"product_id": "p3"}), at),
    ];
    produce(&bootstrap, &topics.raw, &keyed(&later));
    let all = by_message_id(&read_exactly(&bootstrap, &topics.enriched, 7, Duration::from_secs(30)).await);
    assert_eq!(all["m5"]["enrichment"]["product"]["price"], 11.0);
    assert_eq!(all["m6"]["enrichment"]["product"], Value::Null);
    assert_eq!(all["m7"]["enrichment"]["product"], Value::Null);
    stop_enricher(enricher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_split_at_the_gap_and_windows_count_late_events() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 2).await;
    // On sale since the day before the events, so the event-time join finds its price.
    produce_at(
        &bootstrap,
        &topics.products,
        &[(Some("px".into()), Some(json!({"id": "px", "name": "Kettle", "price": 30})))],
        1_767_139_200_000,
    );
    let mut config = topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent);
    config.enricher.windows.size_secs = 60;
    config.enricher.windows.grace_secs = 10;
    config.enricher.sessions.inactivity_minutes = 30;
    let enricher = start_enricher(config).await;

    let view = |id: &str, at: &str| track(id, "shopper", "Product Viewed", json!({"product_id": "px"}), at);
    let events = vec![
        // Sessions: 10 minutes apart, then 35 minutes apart.
        track("s1", "walker", "Page Viewed", json!({}), "2026-01-01T09:00:00.000Z"),
        track("s2", "walker", "Page Viewed", json!({}), "2026-01-01T09:10:00.000Z"),
        track("s3", "walker", "Page Viewed", json!({}), "2026-01-01T09:45:00.000Z"),
        // Windows of 60 s with 10 s grace, all for one product.
        view("w1", "2026-01-01T10:00:01.000Z"),
        view("w2", "2026-01-01T10:00:02.000Z"),
        view("w3", "2026-01-01T10:01:05.000Z"),
        view("w4-late-in-grace", "2026-01-01T10:00:59.000Z"),
        view("w5", "2026-01-01T10:01:15.000Z"),
        view("w6-too-late", "2026-01-01T10:00:30.000Z"),
        track(
            "w7",
            "shopper",
            "Order Completed",
            // Two line items of one record land in one repartition partition at one offset.
            json!({"products": [{"product_id": "px", "quantity": 2}, {"product_id": "px", "quantity": 1}]}),
            "2026-01-01T10:01:20.000Z",
        ),
        view("w8", "2026-01-01T10:02:30.000Z"),
    ];
    produce(&bootstrap, &topics.raw, &keyed(&events));
    let enriched =
        by_message_id(&read_exactly(&bootstrap, &topics.enriched, events.len(), Duration::from_secs(30)).await);
    let session = |id: &str| enriched[id]["enrichment"]["session"].clone();
    assert_eq!(session("s1")["id"], session("s2")["id"]);
    assert_ne!(session("s2")["id"], session("s3")["id"]);
    assert_eq!(
        (session("s1")["sequence"].clone(), session("s2")["sequence"].clone(), session("s3")["sequence"].clone()),
        (json!(1), json!(2), json!(1))
    );
    assert_eq!(session("s3")["start"], "2026-01-01T09:45:00.000Z");

    // Rows: window 10:00 closes at 10:01:10 (w5), is re-emitted once for w6, window 10:01
    // closes at 10:02:10 (w8) with one row per event name.
    let rows = read_exactly(&bootstrap, &topics.aggregates, 4, Duration::from_secs(30)).await;
    let mut latest: HashMap<String, Value> = HashMap::new();
    for row in &rows {
        latest.insert(row.key.clone().unwrap_or_default(), row.value.clone());
    }
    let first = &latest["px|2026-01-01T10:00:00.000Z|Product Viewed"];
    assert_eq!((first["count"].clone(), first["lateDropped"].clone()), (json!(3), json!(1)), "{rows:#?}");
    let second = &latest["px|2026-01-01T10:01:00.000Z|Product Viewed"];
    assert_eq!((second["count"].clone(), second["lateDropped"].clone()), (json!(2), json!(0)));
    let purchases = &latest["px|2026-01-01T10:01:00.000Z|Order Completed"];
    assert_eq!(
        (purchases["count"].clone(), purchases["quantity"].clone(), purchases["revenue"].clone()),
        (json!(2), json!(3.0), json!(90.0))
    );
    stop_enricher(enricher).await;
}

/// Two pipeline threads in one instance: each is a group member with its own partitions, and
/// together they write every event exactly once, keep each visitor in one session, and count
/// every product view once in the windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pipeline_threads_share_the_partitions_exactly_once() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 4).await;
    produce(
        &bootstrap,
        &topics.products,
        &[(Some("px".into()), Some(json!({"id": "px", "name": "Kettle", "price": 30})))],
    );
    let mut config = topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent);
    config.enricher.threads = 2;
    let metrics = Arc::new(EnricherMetrics::default());
    let enricher = tokio::task::spawn_blocking(move || clickstream_enricher::start_with_metrics(config, metrics))
        .await
        .expect("join")
        .expect("enricher starts");
    assert_eq!(enricher.threads(), 2);

    // 40 visitors, 10 views each, one second apart: one session per visitor.
    let events: Vec<Value> = (0..400)
        .map(|i| {
            let at = format!("2026-01-01T10:00:{:02}.000Z", i / 40);
            track(&format!("m{i}"), &format!("visitor-{}", i % 40), "Product Viewed", json!({"product_id": "px"}), &at)
        })
        .collect();
    produce(&bootstrap, &topics.raw, &keyed(&events));
    let read = read_exactly(&bootstrap, &topics.enriched, events.len(), Duration::from_secs(60)).await;
    let enriched = by_message_id(&read);
    assert_eq!(enriched.len(), events.len(), "every messageId exactly once");
    let partitions: std::collections::BTreeSet<i32> = read.iter().map(|m| m.partition).collect();
    assert_eq!(partitions.len(), 4, "output partition p holds input partition p: {partitions:?}");
    let mut sessions: HashMap<String, (Value, Vec<u64>)> = HashMap::new();
    for event in enriched.values() {
        let visitor = event["anonymousId"].as_str().unwrap_or_default().to_owned();
        let session = &event["enrichment"]["session"];
        let entry = sessions.entry(visitor).or_insert_with(|| (session["id"].clone(), Vec::new()));
        assert_eq!(entry.0, session["id"], "a visitor kept one session: {event}");
        entry.1.push(session["sequence"].as_u64().unwrap_or_default());
    }
    for (visitor, (_, mut sequences)) in sessions {
        sequences.sort_unstable();
        assert_eq!(sequences, (1..=10).collect::<Vec<u64>>(), "{visitor}");
    }
    // The 10:00 window closes once an event passes 10:00:00 + 60 s + grace; send one.
    let closing =
        track("closing", "visitor-0", "Product Viewed", json!({"product_id": "px"}), "2026-01-01T10:05:00.000Z");
    produce(&bootstrap, &topics.raw, &keyed(&[closing]));
    let rows = read_exactly(&bootstrap, &topics.aggregates, 1, Duration::from_secs(30)).await;
    assert_eq!(rows[0].value["count"], json!(400), "{:?}", rows[0].value);
    stop_enricher(enricher).await;
}
