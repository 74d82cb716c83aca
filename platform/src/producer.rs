//! The producer settings every service configures the same way: typed fields, each named after
//! its librdkafka key, with per-service defaults; any other producer property passes through
//! the service's own property map.

use serde::{Deserialize, Serialize};

use crate::kafka_stats::DEFAULT_STATISTICS_INTERVAL_MS;

/// A Kafka producer's settings. Each service's config holds one, with that service's defaults
/// (a partial table keeps the service's defaults for the keys it leaves out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProducerSettings {
    /// librdkafka `acks`: `all` so an acknowledged record survives a broker loss.
    pub acks: String,
    /// librdkafka `enable.idempotence`: no duplicates or reordering from producer retries.
    pub enable_idempotence: bool,
    /// librdkafka `compression.type`: `lz4` or `zstd` (snappy breaks Tansu's sqlite storage).
    pub compression_type: String,
    /// librdkafka `linger.ms`: how long to wait to fill a batch.
    pub linger_ms: u32,
    /// librdkafka `batch.size`: largest batch in bytes.
    pub batch_size: u32,
    /// librdkafka `message.timeout.ms`: how long the producer keeps trying to deliver a record
    /// before reporting it failed.
    pub message_timeout_ms: u32,
    /// librdkafka `statistics.interval.ms`: how often queue depth, broker RTT and broker state
    /// are refreshed for the metrics (0 turns them off).
    pub statistics_interval_ms: u64,
}

/// librdkafka's own `message.timeout.ms`: five minutes.
pub const LIBRDKAFKA_MESSAGE_TIMEOUT_MS: u32 = 300_000;
/// librdkafka's own `batch.size`.
pub const LIBRDKAFKA_BATCH_SIZE: u32 = 1_000_000;

impl Default for ProducerSettings {
    /// Durable and ordered: every service starts from these and changes what it must.
    fn default() -> Self {
        Self {
            acks: "all".to_owned(),
            enable_idempotence: true,
            compression_type: "lz4".to_owned(),
            linger_ms: 5,
            batch_size: LIBRDKAFKA_BATCH_SIZE,
            message_timeout_ms: LIBRDKAFKA_MESSAGE_TIMEOUT_MS,
            statistics_interval_ms: DEFAULT_STATISTICS_INTERVAL_MS,
        }
    }
}

impl ProducerSettings {
    /// The librdkafka properties these settings make, for `KafkaConfig::client_config`. Topics
    /// are never created by producing to them: provisioning is explicit.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("acks", self.acks.clone()),
            ("enable.idempotence", self.enable_idempotence.to_string()),
            ("compression.type", self.compression_type.clone()),
            ("linger.ms", self.linger_ms.to_string()),
            ("batch.size", self.batch_size.to_string()),
            ("message.timeout.ms", self.message_timeout_ms.to_string()),
            ("statistics.interval.ms", self.statistics_interval_ms.to_string()),
            ("allow.auto.create.topics", "false".to_owned()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_reaches_its_librdkafka_key() {
        let settings = ProducerSettings { linger_ms: 20, message_timeout_ms: 7_000, ..ProducerSettings::default() };
        let properties: std::collections::BTreeMap<_, _> = settings.properties().into_iter().collect();
        assert_eq!(properties["linger.ms"], "20");
        assert_eq!(properties["message.timeout.ms"], "7000");
        assert_eq!(properties["acks"], "all");
        assert_eq!(properties["enable.idempotence"], "true");
        assert_eq!(properties["allow.auto.create.topics"], "false");
    }
}
