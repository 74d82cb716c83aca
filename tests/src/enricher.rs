//! Enricher test setup: unique topics, a config pointing at them, and producing raw events and
//! product changes straight to Kafka.

use std::time::Duration;

use clickstream_enricher::config::Guarantee;
use clickstream_enricher::EnricherConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

use crate::unique;

/// One test's topics, all unique.
#[derive(Debug, Clone)]
pub struct EnricherTopics {
    pub raw: String,
    pub products: String,
    pub enriched: String,
    pub aggregates: String,
    pub repartition: String,
    pub dlq: String,
    /// The product table's changelog.
    pub product_versions: String,
    /// Each repartition partition's window watermark.
    pub window_watermarks: String,
    pub group: String,
}

impl EnricherTopics {
    pub fn new() -> Self {
        Self {
            raw: unique("events.raw"),
            products: unique("products"),
            enriched: unique("events.enriched"),
            aggregates: unique("agg.product_activity"),
            repartition: unique("enricher.repartition"),
            dlq: unique("enricher.dlq"),
            product_versions: unique("enricher.product-versions"),
            window_watermarks: unique("enricher.window-watermarks"),
            group: unique("enricher"),
        }
    }

    /// Creates every topic; the raw, enriched, repartition and window watermark topics get
    /// `partitions`.
    pub async fn create(&self, bootstrap: &str, partitions: i32) {
        crate::kafka::create_topics(
            bootstrap,
            &[
                (&self.raw, partitions),
                (&self.enriched, partitions),
                (&self.repartition, partitions),
                (&self.window_watermarks, partitions),
                (&self.products, 1),
                (&self.aggregates, 1),
                (&self.dlq, 1),
                (&self.product_versions, 1),
            ],
        )
        .await;
    }

    /// The same settings as `--set` flags, for the `clickstream enricher` binary.
    pub fn flags(&self, bootstrap: &str, guarantee: Guarantee) -> Vec<String> {
        let mut flags = vec![
            format!("kafka.bootstrap_servers={bootstrap}"),
            format!("enricher.group_id={}", self.group),
            format!("enricher.guarantee={}", guarantee.as_str()),
            format!("enricher.inputs={}", self.raw),
            format!("topics.products={}", self.products),
            format!("enricher.topics.enriched={}", self.enriched),
            format!("enricher.topics.aggregates={}", self.aggregates),
            format!("enricher.topics.repartition={}", self.repartition),
            format!("enricher.topics.dlq={}", self.dlq),
            format!("enricher.topics.product_versions={}", self.product_versions),
            format!("enricher.topics.window_watermarks={}", self.window_watermarks),
            // Tests run side by side: each admin listener takes a free port.
            "enricher.admin.listen=127.0.0.1:0".to_owned(),
        ];
        // The tests run on Tansu, whose sqlite engine wants smaller fetches than Kafka.
        flags.extend(
            clickstream_enricher::pipeline::TANSU_CONSUMER_PROPERTIES
                .iter()
                .map(|(key, value)| format!("enricher.consumer_properties.{key}={value}")),
        );
        flags
    }

    pub fn config(&self, bootstrap: &str, guarantee: Guarantee) -> EnricherConfig {
        let overrides = self.flags(bootstrap, guarantee);
        let mut config: EnricherConfig =
            clickstream_platform::config::load(None, std::iter::empty(), &overrides).expect("enricher config");
        config.enricher.commit_interval_ms = 200;
        config
    }
}

impl Default for EnricherTopics {
    fn default() -> Self {
        Self::new()
    }
}

/// A producer for test input, idempotent like the gateway's.
pub fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("producer")
}

/// Produces records (`None` value = tombstone) and waits until Kafka has them.
pub fn produce(bootstrap: &str, topic: &str, records: &[(Option<String>, Option<Value>)]) {
    produce_records(bootstrap, topic, records, None);
}

/// As [`produce`], every record with the Kafka timestamp `timestamp_ms` (for products, the
/// time their rows become valid for the event-time join).
pub fn produce_at(bootstrap: &str, topic: &str, records: &[(Option<String>, Option<Value>)], timestamp_ms: i64) {
    produce_records(bootstrap, topic, records, Some(timestamp_ms));
}

fn produce_records(bootstrap: &str, topic: &str, records: &[(Option<String>, Option<Value>)], at: Option<i64>) {
    let producer = producer(bootstrap);
    for (key, value) in records {
        let payload = value.as_ref().map(Value::to_string);
        let mut record: BaseRecord<'_, str, str> = BaseRecord::to(topic)
            .headers(OwnedHeaders::new().insert(Header { key: "source", value: Some("web-test") }));
        if let Some(key) = key {
            record = record.key(key.as_str());
        }
        if let Some(payload) = &payload {
            record = record.payload(payload.as_str());
        }
        if let Some(timestamp_ms) = at {
            record = record.timestamp(timestamp_ms);
        }
        let mut pending = record;
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((_, returned)) => {
                    pending = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// A track event as the gateway writes it to the raw topic.
pub fn track(message_id: &str, anonymous_id: &str, event: &str, properties: Value, timestamp: &str) -> Value {
    let mut track = json!({
        "type": "track",
        "event": event,
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "context": {"library": {"name": "test", "version": "1"}},
        "timestamp": timestamp,
        "receivedAt": timestamp,
    });
    track["properties"] = properties;
    track
}

/// Raw events keyed by visitor, as the gateway keys them.
pub fn keyed(events: &[Value]) -> Vec<(Option<String>, Option<Value>)> {
    events.iter().map(|e| (e["anonymousId"].as_str().map(str::to_owned), Some(e.clone()))).collect()
}

/// Longest an in-process enricher may take to start: its own Kafka waits end at 30 s each.
const START_LIMIT: Duration = Duration::from_secs(120);
/// Longest a stop may take: the final commit waits up to 60 s for outputs in flight.
const STOP_LIMIT: Duration = Duration::from_secs(120);

/// Starts an enricher in-process (its start-up blocks, so off the async runtime's threads).
pub async fn start_enricher(config: EnricherConfig) -> clickstream_enricher::EnricherHandle {
    blocking_within(START_LIMIT, "start", move || clickstream_enricher::start(config)).await.expect("enricher starts")
}

/// Commits, leaves the group and waits for the pipeline threads.
pub async fn stop_enricher(enricher: clickstream_enricher::EnricherHandle) {
    blocking_within(STOP_LIMIT, "stop", move || enricher.stop()).await;
}

/// Runs the enricher's blocking `work` off the runtime's threads, failing with every thread's
/// backtrace if it takes longer than `limit` (a hang then shows where it waits).
async fn blocking_within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(work)).await {
        Ok(done) => done.expect("join"),
        Err(_) => panic!("the enricher did not {what} in {limit:?}; threads:\n{}", crate::threads::backtraces()),
    }
}

/// Polls `done` every 50 ms for up to 20 s.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
