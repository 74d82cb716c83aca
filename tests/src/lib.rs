//! Harness for end-to-end tests: real brokers (Tansu, librdkafka's mock cluster), gateways on
//! port 0, unique topics per test, and a consumer that reads messages back.

pub mod cdc;
pub mod command;
pub mod dev;
pub mod drill;
pub mod enricher;
pub mod enricher_process;
pub mod gateway_process;
pub mod kafka;
pub mod markdown;
pub mod postgres;
pub mod python_sdk;
pub mod tansu;
pub mod threads;

use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::GatewayConfig;

/// The write key every test gateway accepts.
pub const WRITE_KEY: &str = "test-write-key";
/// The source name written to each event's `source` header.
pub const SOURCE_NAME: &str = "web-test";
/// The only browser origin the test source allows.
pub const ALLOWED_ORIGIN: &str = "https://shop.example";

/// Every topic of the default config: the gateway's and the enricher's, as `topics apply`
/// creates them without `--file` (and as deploy/topics.toml lists them), sorted.
pub const PIPELINE_TOPICS: [&str; 9] = [
    "agg.product_activity.1m",
    "enricher.changelog.product-versions",
    "enricher.changelog.window-watermarks",
    "enricher.dlq",
    "enricher.repartition.product",
    "events.dlq",
    "events.enriched",
    "events.raw",
    "products",
];

/// A name no other test uses, so tests can share a broker and run in parallel.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Gateway config for tests: port 0, one source, the given broker and topics, fast timeouts.
pub fn gateway_config(bootstrap: &str, raw_topic: &str, dlq_topic: &str) -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.http.listen = "127.0.0.1:0".into();
    config.admin.listen = "127.0.0.1:0".into();
    config.http.drain_delay_secs = 0;
    config.http.shutdown_budget_secs = 2;
    config.kafka.bootstrap_servers = bootstrap.into();
    config.topics.raw = raw_topic.into();
    config.topics.dlq = dlq_topic.into();
    config.producer.message_timeout_ms = 3_000;
    config.delivery.kafka_health_interval_ms = 250;
    config.spool.dir = std::env::temp_dir().join(unique("clickstream-spool")).display().to_string();
    config.sources.push(SourceConfig {
        name: SOURCE_NAME.into(),
        write_key: WRITE_KEY.into(),
        allowed_origins: vec![ALLOWED_ORIGIN.into()],
    });
    config
}
