//! `clickstream cdc`'s configuration: the shared `[kafka]` and `[telemetry]`, and everything
//! of its own under `[cdc]`.

use std::collections::BTreeMap;

use clickstream_platform::kafka::KafkaConfig;
use clickstream_platform::producer::ProducerSettings;
use clickstream_platform::telemetry::{AdminConfig, TelemetryConfig};
use serde::{Deserialize, Serialize};

/// Everything `clickstream cdc` reads from `clickstream.toml`, env and flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct CdcConfig {
    /// How to reach Kafka (shared with the gateway and the enricher).
    pub kafka: KafkaConfig,
    /// OTLP export (shared with the gateway).
    pub telemetry: TelemetryConfig,
    /// The PostgreSQL source and the change records it makes.
    pub cdc: CdcSettings,
}

/// The PostgreSQL source: where it is, what it captures, and how the records look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CdcSettings {
    /// libpq connection string of a user with the `REPLICATION` attribute and `SELECT` on the
    /// tables, as key=value pairs (`host=db port=5432 user=cdc password=${PGPASSWORD}
    /// dbname=shop`) or a `postgresql://` URL. Without TLS (`sslmode=disable`).
    pub connection: String,
    /// Tables to capture, as `schema.table`. Each needs a primary key: it is the records' key,
    /// and `REPLICA IDENTITY DEFAULT` sends it with each update and delete. The publication is
    /// made for exactly these tables.
    pub tables: Vec<String>,
    /// The publication to read (Debezium's `publication.name`). Created for `tables` when
    /// missing and `create_publication` is on; an existing one is used as it is.
    pub publication: String,
    /// Create the publication when it is missing (needs ownership of the tables). Off: a
    /// missing publication is an error.
    pub create_publication: bool,
    /// The logical replication slot (Debezium's `slot.name`), created with `pgoutput` on first
    /// start and reused after: it is where a restart resumes.
    pub slot: String,
    /// Debezium's `topic.prefix`: the first part of each topic name, the record schemas'
    /// names and `source.name`.
    pub topic_prefix: String,
    /// The topic of a table: `{prefix}`, `{schema}` and `{table}` are replaced.
    pub topic_template: String,
    /// Topic per table that overrides the template, e.g. `"public.products" = "products"`.
    pub topics: BTreeMap<String, String>,
    /// The JSON converter's `schemas.enable`: wrap keys and values as `{schema, payload}`.
    /// The enricher needs the schema to decode `precise` decimals.
    pub schemas_enable: bool,
    /// Debezium's `decimal.handling.mode`: `precise` (Connect `Decimal` bytes), `double` or
    /// `string`.
    pub decimal_handling_mode: DecimalHandling,
    /// Debezium's `time.precision.mode`: `adaptive`, `adaptive_time_microseconds` or
    /// `connect`.
    pub time_precision_mode: TimePrecision,
    /// Debezium's `tombstones.on.delete`: a null-valued record with the key after each delete,
    /// so compaction drops the row.
    pub tombstones_on_delete: bool,
    /// Debezium's `skipped.operations`: changes not to send, of `c` (insert), `u` (update), `d`
    /// (delete) and `t` (truncate). Truncates are skipped by default, as Debezium does: their
    /// records have no key, which a compacted topic refuses.
    pub skipped_operations: Vec<String>,
    /// Debezium's `heartbeat.interval.ms`: how often, with no changes to send, a logical
    /// message is written to the WAL so that the slot's confirmed position moves on and the
    /// database can recycle WAL. 0 turns heartbeats off.
    pub heartbeat_interval_ms: u64,
    /// How often the acknowledged position is reported to the slot, in milliseconds.
    pub status_interval_ms: u64,
    /// Rows fetched per round trip while snapshotting.
    pub snapshot_fetch_size: u32,
    /// The producer's settings, each named after its librdkafka key (`.` written as `_`).
    pub producer: ProducerSettings,
    /// Any other librdkafka property for the producer only; these win over `producer` and
    /// `kafka.properties`.
    pub producer_properties: BTreeMap<String, String>,
    /// The admin listener: `/metrics`, `/healthz` and `/readyz`.
    pub admin: AdminConfig,
}

/// Default slot, publication and topic prefix.
pub const DEFAULT_NAME: &str = "clickstream_cdc";
/// Debezium's default topic naming.
pub const DEFAULT_TOPIC_TEMPLATE: &str = "{prefix}.{schema}.{table}";
/// The cdc admin listener's default address: next to the enricher's.
pub const DEFAULT_CDC_ADMIN_LISTEN: &str = "127.0.0.1:9466";

impl Default for CdcSettings {
    fn default() -> Self {
        Self {
            connection: "host=127.0.0.1 port=5432 user=clickstream_cdc dbname=postgres".to_owned(),
            tables: vec!["public.products".to_owned()],
            publication: DEFAULT_NAME.to_owned(),
            create_publication: true,
            slot: DEFAULT_NAME.to_owned(),
            topic_prefix: "clickstream".to_owned(),
            topic_template: DEFAULT_TOPIC_TEMPLATE.to_owned(),
            topics: BTreeMap::from([("public.products".to_owned(), "products".to_owned())]),
            schemas_enable: true,
            decimal_handling_mode: DecimalHandling::Precise,
            time_precision_mode: TimePrecision::Adaptive,
            tombstones_on_delete: true,
            skipped_operations: vec!["t".to_owned()],
            heartbeat_interval_ms: 10_000,
            status_interval_ms: 1_000,
            snapshot_fetch_size: 5_000,
            // Change records come in transactions; a short linger batches each one. No
            // statistics: cdc exports its own lag and counts.
            producer: ProducerSettings { linger_ms: 10, statistics_interval_ms: 0, ..ProducerSettings::default() },
            producer_properties: BTreeMap::new(),
            admin: AdminConfig { listen: DEFAULT_CDC_ADMIN_LISTEN.to_owned() },
        }
    }
}

impl CdcSettings {
    /// Whether changes of Debezium's op code `op` are skipped.
    pub fn skips(&self, op: &str) -> bool {
        self.skipped_operations.iter().any(|skipped| skipped == op)
    }

    /// The topic a table's records go to.
    pub fn topic_for(&self, schema: &str, table: &str) -> String {
        if let Some(topic) = self.topics.get(&format!("{schema}.{table}")) {
            return topic.clone();
        }
        self.topic_template
            .replace("{prefix}", &self.topic_prefix)
            .replace("{schema}", schema)
            .replace("{table}", table)
    }
}

/// Debezium's `decimal.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecimalHandling {
    /// Connect's `Decimal`: base64 of the unscaled two's-complement bytes, exact.
    Precise,
    /// A JSON double: may round.
    Double,
    /// The decimal's text.
    String,
}

/// Debezium's `time.precision.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimePrecision {
    /// Milliseconds or microseconds, as the column's precision needs.
    Adaptive,
    /// As `adaptive`, but every `time` in microseconds.
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's own types, in milliseconds.
    Connect,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_template_unless_overridden() {
        let settings = CdcSettings::default();
        assert_eq!(settings.topic_for("public", "products"), "products");
        assert_eq!(settings.topic_for("public", "orders"), "clickstream.public.orders");
    }
}
