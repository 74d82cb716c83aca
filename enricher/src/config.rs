//! The enricher's configuration: every setting lives under `[enricher]` (plus the shared
//! `[kafka]`), so one `clickstream.toml` can configure the gateway and the enricher together.

use std::path::PathBuf;

use clickstream_platform::kafka::KafkaConfig;
use clickstream_platform::producer::ProducerSettings;
use clickstream_platform::telemetry::{AdminConfig, TelemetryConfig};
use clickstream_platform::topics::TopicDef;
use clickstream_routing::RoutingConfig;
use serde::{Deserialize, Serialize};

/// Everything the enricher reads from `clickstream.toml`, env and flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct EnricherConfig {
    /// How to reach Kafka (shared with the gateway).
    pub kafka: KafkaConfig,
    /// The gateway's topics; the enricher reads only `topics.raw`, the default route.
    pub topics: GatewayTopics,
    /// The gateway's routing rules; their topics are the enricher's default inputs.
    pub routing: RoutingConfig,
    /// OTLP export (shared with the gateway).
    pub telemetry: TelemetryConfig,
    /// The enricher's own settings.
    pub enricher: EnricherSettings,
}

/// The part of the gateway's `[topics]` the enricher needs (other keys there are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct GatewayTopics {
    /// Topic the gateway's default route produces to.
    pub raw: String,
    /// Compacted product catalog topic, keyed by product id: the enricher's product table.
    /// One key for the gateway, `products load`, `topics apply` and the enricher.
    pub products: String,
}

impl Default for GatewayTopics {
    fn default() -> Self {
        Self { raw: DEFAULT_INPUT.to_owned(), products: DEFAULT_PRODUCTS_TOPIC.to_owned() }
    }
}

impl EnricherConfig {
    /// The topics to consume: `enricher.inputs`, else every fixed topic the gateway's routing
    /// can produce to (its default route, rules, historical and overflow topics).
    pub fn input_topics(&self) -> Vec<String> {
        if self.enricher.inputs.is_empty() {
            self.routing.with_raw_topic(&self.topics.raw).target_topics()
        } else {
            self.enricher.inputs.clone()
        }
    }
}

/// How the enricher consumes, what it adds, and what it promises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EnricherSettings {
    /// librdkafka `group.id` of the consumer group; instances with the same id share the
    /// input partitions.
    pub group_id: String,
    /// Processing guarantee: `at_least_once` (fastest), `exactly_once_idempotent` (any broker
    /// with idempotent producers, Tansu included) or `exactly_once_transactional` (Kafka
    /// transactions; Apache Kafka 2.5 or later).
    pub guarantee: Guarantee,
    /// Run `exactly_once_transactional` even on a broker that accepts transactions without
    /// enforcing them (librdkafka's mock cluster). Only for testing the transactional path.
    pub allow_unenforced_transactions: bool,
    /// Topics to consume. Empty: every fixed topic the gateway's routing can produce to
    /// (`topics.raw` when there are no rules).
    pub inputs: Vec<String>,
    /// Pipeline threads in this instance. Each is a member of the consumer group with its own
    /// partitions, sessions, windows and producer, so nothing on the per-event path is
    /// shared. 0: the available cores, capped at the input partitions. Instances × threads
    /// beyond the input partitions leave members idle.
    pub threads: usize,
    /// The admin listener: `/metrics`, `/healthz` and `/readyz`.
    pub admin: AdminConfig,
    /// How often outputs are flushed and progress is committed, in milliseconds.
    pub commit_interval_ms: u64,
    /// Seconds to wait for Kafka at start (topic checks, product table bootstrap).
    pub startup_timeout_secs: u64,
    /// Output and table topic names.
    pub topics: EnricherTopics,
    /// Librdkafka properties for the consumer only, such as `max.partition.fetch.bytes`.
    pub consumer_properties: std::collections::BTreeMap<String, String>,
    /// The output producer's settings, each named after its librdkafka key (`.` written as
    /// `_`). A longer linger than the gateway's: outputs come in bursts per poll, and no client
    /// waits on them.
    pub producer: ProducerSettings,
    /// Any other librdkafka property for the producer only, such as `transactional.id`; these
    /// win over `producer` and `kafka.properties`.
    pub producer_properties: std::collections::BTreeMap<String, String>,
    /// Dropping repeated `messageId`s that slipped past the gateway.
    pub dedup: DedupSettings,
    /// Sessionization.
    pub sessions: SessionSettings,
    /// Windowed product aggregates.
    pub windows: WindowSettings,
    /// IP geolocation and anonymization.
    pub ip: IpSettings,
    /// The product table: which row an event joins, and how much history is kept for it.
    pub products: ProductTableSettings,
}

/// Which exactly-once mechanism, if any, protects the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Outputs are flushed, then offsets committed: a crash repeats some outputs.
    AtLeastOnce,
    /// Output partition p holds input partition p, and every record names its input offset,
    /// so a restarted enricher resumes exactly after its last output.
    ExactlyOnceIdempotent,
    /// Outputs and input offsets commit in one Kafka transaction.
    ExactlyOnceTransactional,
}

impl Guarantee {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtLeastOnce => "at_least_once",
            Self::ExactlyOnceIdempotent => "exactly_once_idempotent",
            Self::ExactlyOnceTransactional => "exactly_once_transactional",
        }
    }
}

/// Topic names the enricher reads as tables or writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EnricherTopics {
    /// Every event, enriched, keyed as its input.
    pub enriched: String,
    /// One-minute product activity windows (compacted, keyed by product, window and event).
    pub aggregates: String,
    /// Internal topic that regroups product activity by product id.
    pub repartition: String,
    /// Records the enricher could not read, with the reason and where they came from.
    pub dlq: String,
    /// The product table's changelog: superseded product versions keyed by product id and
    /// valid-from time (compact and delete, `retention.ms` = the history retention), read back
    /// at start because the compacted products topic keeps only each product's last row.
    pub product_versions: String,
    /// Each repartition partition's window watermark, written at every commit to the partition
    /// of the same number (compacted, keyed by that number; as many partitions as the
    /// repartition topic). A new owner reads it back, so windows that already closed are not
    /// counted again after a partition moves, on brokers that drop commit metadata (Tansu).
    pub window_watermarks: String,
}

/// Which product row an event joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductJoin {
    /// The row valid at the event's `timestamp`: a replay or a lagging enricher gets the price
    /// the visitor saw. Keeps each product's history and a changelog topic.
    EventTime,
    /// The row as the table holds it when the event is processed, whatever the event's time.
    Latest,
}

/// The versioned product table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProductTableSettings {
    /// `event_time` (join the row valid at the event's timestamp) or `latest` (the current row).
    pub join: ProductJoin,
    /// How long a superseded product version stays joinable, in seconds after the change that
    /// replaced it; also the changelog topic's `retention.ms`.
    pub history_retention_secs: u64,
    /// Most versions kept per product within the retention; the oldest are dropped first.
    pub max_versions_per_product: u64,
}

/// Dropping repeated `messageId`s within a bounded window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DedupSettings {
    /// How many recent `messageId`s to remember per input partition, in a table of 8 bytes per
    /// id, resident once the partition's first few thousand ids have arrived.
    pub capacity: u64,
    /// How long a `messageId` is remembered, in seconds.
    pub window_secs: u64,
}

/// When a visitor's session ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Inactivity, in event time, after which a visitor's next event opens a new session.
    pub inactivity_minutes: u64,
    /// Most visitors whose session state is kept in memory; the idlest are evicted first.
    pub max_visitors: u64,
}

/// Tumbling windows over product activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WindowSettings {
    /// Window length in seconds.
    pub size_secs: u64,
    /// How long after a window's end, in event time, late events are still counted.
    pub grace_secs: u64,
}

/// GeoIP lookup, then anonymization of `context.ip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IpSettings {
    /// MaxMind-format city or country database (`.mmdb`). Empty: no geolocation.
    pub geoip_database: Option<PathBuf>,
    /// Whether to mask `context.ip` after the lookup.
    pub anonymize: bool,
    /// Leading bits of an IPv4 address kept when anonymizing (24 zeroes the last octet).
    pub ipv4_prefix_bits: u8,
    /// Leading bits of an IPv6 address kept when anonymizing.
    pub ipv6_prefix_bits: u8,
}

pub const DEFAULT_GROUP_ID: &str = "clickstream-enricher";
pub const DEFAULT_INPUT: &str = "events.raw";
/// `topics.products`.
pub const DEFAULT_PRODUCTS_TOPIC: &str = "products";
/// Default admin address: next to the gateway's 9464.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9465";
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 500;
/// `enricher.threads`: as many as the machine has cores, no more than there are partitions.
pub const DEFAULT_THREADS: usize = 0;
pub const DEFAULT_SESSION_INACTIVITY_MINUTES: u64 = 30;
pub const DEFAULT_WINDOW_SECS: u64 = 60;
pub const DEFAULT_GRACE_SECS: u64 = 30;
/// Seven days, as Kafka Streams' versioned stores are typically kept.
pub const DEFAULT_PRODUCT_HISTORY_RETENTION_SECS: u64 = 7 * 24 * 3600;
pub const DEFAULT_MAX_VERSIONS_PER_PRODUCT: u64 = 100;
pub const DEFAULT_PRODUCT_VERSIONS_TOPIC: &str = "enricher.changelog.product-versions";
/// The enricher's producer defaults: a 20 ms linger fills batches from each poll's outputs, and
/// the message timeout is librdkafka's `transaction.timeout.ms` (60 s), which a transactional
/// producer's must not exceed.
pub fn enricher_producer_defaults() -> ProducerSettings {
    ProducerSettings { linger_ms: 20, message_timeout_ms: 60_000, ..ProducerSettings::default() }
}
pub const DEFAULT_WINDOW_WATERMARKS_TOPIC: &str = "enricher.changelog.window-watermarks";

impl Default for EnricherSettings {
    fn default() -> Self {
        Self {
            group_id: DEFAULT_GROUP_ID.to_owned(),
            guarantee: Guarantee::ExactlyOnceIdempotent,
            allow_unenforced_transactions: false,
            inputs: Vec::new(),
            threads: DEFAULT_THREADS,
            admin: AdminConfig { listen: DEFAULT_ADMIN_LISTEN.to_owned() },
            commit_interval_ms: DEFAULT_COMMIT_INTERVAL_MS,
            startup_timeout_secs: 30,
            topics: EnricherTopics::default(),
            consumer_properties: std::collections::BTreeMap::new(),
            producer: enricher_producer_defaults(),
            producer_properties: std::collections::BTreeMap::new(),
            dedup: DedupSettings::default(),
            sessions: SessionSettings::default(),
            windows: WindowSettings::default(),
            ip: IpSettings::default(),
            products: ProductTableSettings::default(),
        }
    }
}

impl Default for ProductTableSettings {
    fn default() -> Self {
        Self {
            join: ProductJoin::EventTime,
            history_retention_secs: DEFAULT_PRODUCT_HISTORY_RETENTION_SECS,
            max_versions_per_product: DEFAULT_MAX_VERSIONS_PER_PRODUCT,
        }
    }
}

impl ProductTableSettings {
    /// Whether the table keeps history (and so reads and writes the changelog topic).
    pub fn versioned(&self) -> bool {
        self.join == ProductJoin::EventTime
    }

    pub fn history_retention_ms(&self) -> i64 {
        i64::try_from(self.history_retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

impl Default for EnricherTopics {
    fn default() -> Self {
        Self {
            enriched: "events.enriched".to_owned(),
            aggregates: "agg.product_activity.1m".to_owned(),
            repartition: "enricher.repartition.product".to_owned(),
            dlq: "enricher.dlq".to_owned(),
            product_versions: DEFAULT_PRODUCT_VERSIONS_TOPIC.to_owned(),
            window_watermarks: DEFAULT_WINDOW_WATERMARKS_TOPIC.to_owned(),
        }
    }
}

impl Default for DedupSettings {
    fn default() -> Self {
        Self { capacity: 1_000_000, window_secs: 3600 }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { inactivity_minutes: DEFAULT_SESSION_INACTIVITY_MINUTES, max_visitors: 1_000_000 }
    }
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self { size_secs: DEFAULT_WINDOW_SECS, grace_secs: DEFAULT_GRACE_SECS }
    }
}

impl Default for IpSettings {
    fn default() -> Self {
        Self { geoip_database: None, anonymize: true, ipv4_prefix_bits: 24, ipv6_prefix_bits: 48 }
    }
}

impl EnricherSettings {
    /// The topics the enricher writes or keeps internally, for `clickstream topics apply`.
    /// The enriched, repartition and window watermark topics get the inputs' partition count.
    pub fn topic_specs(&self, partitions: i32, replication: i32) -> Vec<TopicDef> {
        let spec = |name: &str, partitions: i32, cleanup_policy: &str| TopicDef {
            name: name.to_owned(),
            partitions,
            replication,
            cleanup_policy: cleanup_policy.to_owned(),
            retention_ms: None,
            config: std::collections::BTreeMap::new(),
        };
        let mut specs = vec![
            spec(&self.topics.enriched, partitions, "delete"),
            spec(&self.topics.repartition, partitions, "delete"),
            spec(&self.topics.window_watermarks, partitions, "compact"),
            spec(&self.topics.aggregates, 1, "compact"),
            spec(&self.topics.dlq, 1, "delete"),
        ];
        if self.products.versioned() {
            // Compaction keeps one record per (product, valid-from); deletion drops versions
            // superseded longer ago than the history retention (their timestamp is that time).
            let mut changelog = spec(&self.topics.product_versions, 1, "compact,delete");
            changelog.retention_ms = Some(self.products.history_retention_ms());
            specs.push(changelog);
        }
        specs
    }
}
