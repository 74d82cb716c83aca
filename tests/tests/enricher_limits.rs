//! An enriched record the producer refuses as larger than `message.max.bytes` (an input near
//! the limit, grown by its `enrichment`) used to fail the pipeline, which restarted and read
//! the same record again, for good: its partition stopped. It now becomes a dead letter, and
//! the events after it are enriched. Runs on librdkafka's mock cluster.

use std::time::Duration;

use clickstream_enricher::config::Guarantee;
use clickstream_platform::broker::EmbeddedBroker;
use clickstream_tests::enricher::{keyed, produce, start_enricher, stop_enricher, track, EnricherTopics};
use clickstream_tests::kafka::read_exactly;
use serde_json::json;

/// Just under librdkafka's default `message.max.bytes` (1,000,000), so the input can be
/// written and its enrichment cannot.
const INPUT_BYTES: usize = 999_800;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enriched_record_over_message_max_bytes_is_dead_lettered_and_its_partition_goes_on() {
    let broker = EmbeddedBroker::start(1).expect("mock cluster");
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topics = EnricherTopics::new();
    for name in [
        &topics.raw,
        &topics.enriched,
        &topics.repartition,
        &topics.window_watermarks,
        &topics.products,
        &topics.aggregates,
        &topics.dlq,
        &topics.product_versions,
    ] {
        broker.create_topic(name, 1).expect("topic");
    }
    let at = "2026-01-01T10:00:00.000Z";
    let mut big = track("big-1", "v1", "Big", json!({"blob": ""}), at);
    let padding = INPUT_BYTES - big.to_string().len();
    big["properties"]["blob"] = json!("x".repeat(padding));
    assert_eq!(big.to_string().len(), INPUT_BYTES);
    let after = track("after-1", "v1", "After", json!({}), at);
    produce(&bootstrap, &topics.raw, &keyed(&[big, after]));

    let mut config = topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent);
    config.enricher.threads = 1;
    let enricher = start_enricher(config).await;
    let enriched = read_exactly(&bootstrap, &topics.enriched, 1, Duration::from_secs(60)).await;
    assert_eq!(enriched[0].value["messageId"], "after-1", "the event after the large one is enriched");
    let letters = read_exactly(&bootstrap, &topics.dlq, 1, Duration::from_secs(30)).await;
    let letter = &letters[0].value;
    assert_eq!(letter["reasonKind"], "enriched_too_large", "{}", &letter.to_string()[..300]);
    assert_eq!((letter["topic"].as_str(), letter["offset"].as_i64()), (Some(topics.raw.as_str()), Some(0)));
    // The letter keeps the start of the event's JSON text (the whole would be over the cap).
    assert_eq!(letter["payloadTruncated"], true);
    assert!(letter["payload"].as_str().is_some_and(|text| text.contains(r#""messageId":"big-1""#)));
    stop_enricher(enricher).await;
}
