//! The gateway's configuration: one serde struct per section, each field documented and
//! defaulted, loaded in layers by `clickstream_platform::config`.

mod cidr;
mod console;
mod delivery;
mod plan;
mod snowplow;

pub use cidr::Cidr;
pub use console::*;
pub use plan::{PlanAction, TrackingPlanConfig};
pub use snowplow::{SnowplowConfig, DEFAULT_SNOWPLOW_COOKIE_MAX_AGE_DAYS, DEFAULT_SNOWPLOW_COOKIE_NAME};

pub use delivery::{AckMode, DedupConfig, DeliveryConfig, FsyncPolicy, RateLimitConfig, SpoolConfig};

use clickstream_platform::kafka::{KafkaConfig, TopicSpec};
use clickstream_platform::producer::ProducerSettings;
use clickstream_platform::telemetry::{AdminConfig, TelemetryConfig};
use clickstream_schema::Limits;
use serde::{Deserialize, Serialize};

/// Everything the gateway reads from `clickstream.toml`, env and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct GatewayConfig {
    /// HTTP listener and protocol behaviour.
    pub http: HttpConfig,
    /// How to reach Kafka.
    pub kafka: KafkaConfig,
    /// Producer settings, each named after its librdkafka key (`.` written as `_`); any other
    /// librdkafka property goes in `[kafka.properties]`, which wins over these.
    pub producer: ProducerSettings,
    /// Topic names, and how `clickstream topics apply` creates them.
    pub topics: TopicsConfig,
    /// Which topics each event goes to, and with which partition key. Reloaded on SIGHUP.
    pub routing: clickstream_routing::RoutingConfig,
    /// JSON Schemas for each source's events, checked at the edge. Reloaded on SIGHUP.
    pub tracking_plan: TrackingPlanConfig,
    /// Size limits on events and requests.
    pub limits: Limits,
    /// When a request is answered, and what a 200 promises.
    pub delivery: DeliveryConfig,
    /// The disk spool that holds events while Kafka cannot take them.
    pub spool: SpoolConfig,
    /// Dropping retried duplicates by `messageId`.
    pub dedup: DedupConfig,
    /// Rate limits and load shedding.
    pub rate_limit: RateLimitConfig,
    /// What the edge does to personal data before Kafka.
    pub privacy: PrivacyConfig,
    /// Snowplow's tracker protocol: app ids to sources, and the network user id cookie.
    pub snowplow: SnowplowConfig,
    /// The admin listener: Prometheus `/metrics`, `/healthz` and `/readyz`, and the console.
    /// It is for operators only: keep it on loopback or a private network.
    pub admin: AdminConfig,
    /// The operator's console at `/console` on the admin listener.
    pub console: ConsoleConfig,
    /// OTLP export of traces and metrics.
    pub telemetry: TelemetryConfig,
    /// Sources allowed to send: write key, name and allowed browser origins. File only.
    pub sources: Vec<SourceConfig>,
    /// A TOML file of more `[[sources]]` entries, such as a mounted Kubernetes Secret, so write
    /// keys need not sit in this file. It is reread when its contents change (checked every
    /// `sources_reload_secs`) and on SIGHUP. Empty: only `[[sources]]` above.
    pub sources_file: String,
    /// How often `sources_file` is checked for changes, in seconds.
    pub sources_reload_secs: u64,
}

/// HTTP listener and protocol behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: String,
    /// Public base URL of the gateway (for example `https://t.example.com`), used in the
    /// settings that analytics.js fetches. Empty: derived from each request's `Host` header.
    pub public_url: String,
    /// Header holding the client IP when behind a trusted proxy, such as `x-forwarded-for`.
    /// Empty: the socket's peer address is the client IP. The client IP is the right-most
    /// address in it that is not in `trusted_proxies`, as nginx's `real_ip_recursive` takes it:
    /// the hops to the left of it were written by the client and can be forged.
    pub trusted_proxy_header: String,
    /// Address ranges of the proxies in front of the gateway, such as `10.0.0.0/8` (CIDR or
    /// single addresses). The header is read only from a peer in these ranges. Empty: only the
    /// connecting peer is trusted, so the right-most address in the header is the client.
    #[schemars(with = "Vec<String>")]
    pub trusted_proxies: Vec<Cidr>,
    /// Seconds sent in `Retry-After` when Kafka cannot take events.
    pub retry_after_secs: u32,
    /// How long browsers may cache a CORS preflight, in seconds.
    pub cors_max_age_secs: u32,
    /// Seconds between SIGTERM and closing the listener. `/readyz` answers 503 from the
    /// first moment, so load balancers take the instance out while it still serves; set it a
    /// little above the time your platform needs to remove an endpoint.
    pub drain_delay_secs: u64,
    /// Seconds for the whole shutdown after the drain delay: finishing in-flight requests,
    /// flushing the producer and replaying the spool into Kafka while it is reachable. What is
    /// left stays in the spool for the next start or `clickstream spool replay`.
    pub shutdown_budget_secs: u64,
    /// Serve `/metrics` on the public port too. Off: metrics are on the admin listener only,
    /// so the public internet cannot read them.
    pub public_metrics: bool,
    /// Time allowed to receive a request's headers, in milliseconds. It also closes keep-alive
    /// connections idle for that long, and so bounds slowloris clients.
    pub header_read_timeout_ms: u64,
    /// Time allowed to receive a request's body, in milliseconds; slower clients get 408.
    pub body_read_timeout_ms: u64,
    /// Most open connections; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            public_url: String::new(),
            trusted_proxy_header: String::new(),
            trusted_proxies: Vec::new(),
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            cors_max_age_secs: DEFAULT_CORS_MAX_AGE_SECS,
            drain_delay_secs: DEFAULT_DRAIN_DELAY_SECS,
            shutdown_budget_secs: DEFAULT_SHUTDOWN_BUDGET_SECS,
            public_metrics: false,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 30_000,
            max_connections: 10_000,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            kafka: KafkaConfig::default(),
            producer: gateway_producer_defaults(),
            topics: TopicsConfig::default(),
            routing: clickstream_routing::RoutingConfig::default(),
            tracking_plan: TrackingPlanConfig::default(),
            limits: Limits::default(),
            delivery: DeliveryConfig::default(),
            spool: SpoolConfig::default(),
            dedup: DedupConfig::default(),
            rate_limit: RateLimitConfig::default(),
            privacy: PrivacyConfig::default(),
            snowplow: SnowplowConfig::default(),
            admin: AdminConfig::default(),
            console: ConsoleConfig::default(),
            telemetry: TelemetryConfig::default(),
            sources: Vec::new(),
            sources_file: String::new(),
            sources_reload_secs: DEFAULT_SOURCES_RELOAD_SECS,
        }
    }
}

/// A Secret's file changes within about a minute of the Secret in Kubernetes; checking every
/// 10 s adds little to that.
pub const DEFAULT_SOURCES_RELOAD_SECS: u64 = 10;
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_RETRY_AFTER_SECS: u32 = 5;
pub const DEFAULT_CORS_MAX_AGE_SECS: u32 = 86_400;
/// Kubernetes takes a few seconds to remove an endpoint from every node after SIGTERM.
pub const DEFAULT_DRAIN_DELAY_SECS: u64 = 5;
pub const DEFAULT_SHUTDOWN_BUDGET_SECS: u64 = 20;

/// The gateway's producer defaults: a short linger keeps a single event's wait small, and a
/// short message timeout hands undelivered events to the spool soon.
pub fn gateway_producer_defaults() -> ProducerSettings {
    ProducerSettings { linger_ms: 5, message_timeout_ms: 5_000, ..ProducerSettings::default() }
}

/// Topic names and provisioning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsConfig {
    /// Topic for accepted events.
    pub raw: String,
    /// Dead-letter topic for rejected events, each with its reason.
    pub dlq: String,
    /// Compacted product catalog topic, read by the enricher.
    pub products: String,
    /// Partitions for the event topics when `topics apply` creates them.
    pub partitions: i32,
    /// Replication factor when `topics apply` creates topics.
    pub replication: i32,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            raw: "events.raw".to_owned(),
            dlq: "events.dlq".to_owned(),
            products: "products".to_owned(),
            partitions: 6,
            replication: 1,
        }
    }
}

impl TopicsConfig {
    /// The topics `clickstream topics apply` creates.
    pub fn specs(&self) -> Vec<TopicSpec> {
        let spec = |name: &str, partitions: i32, cleanup_policy: &str| TopicSpec {
            name: name.to_owned(),
            partitions,
            replication: self.replication,
            cleanup_policy: cleanup_policy.to_owned(),
        };
        vec![
            spec(&self.raw, self.partitions, "delete"),
            spec(&self.dlq, 1, "delete"),
            spec(&self.products, 1, "compact"),
        ]
    }
}

/// What the edge does to personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Anonymize `context.ip` before Kafka (last IPv4 octet, IPv6 past /48), so the raw topic
    /// never holds full addresses.
    pub anonymize_ip: bool,
    /// File of suppressed identities, one per line: `userId:ID`, `anonymousId:ID`, or a bare ID
    /// for either; `#` starts a comment. Their events are dropped at the edge and still
    /// answered as accepted. Empty: no suppression.
    pub suppression_file: String,
    /// How often the suppression file's modification time is checked for a reload, in seconds
    /// (SIGHUP also reloads it).
    pub suppression_reload_secs: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self { anonymize_ip: false, suppression_file: String::new(), suppression_reload_secs: 10 }
    }
}

/// One source allowed to send events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name written to each event's `source` header.
    pub name: String,
    /// The write key clients send (Basic auth user, body `writeKey`, or `X-Write-Key`).
    pub write_key: String,
    /// Browser origins allowed to send with this key, such as `https://shop.example.com`;
    /// `*` allows any. Requests without an `Origin` header (server SDKs) are not checked.
    #[serde(default = "any_origin")]
    pub allowed_origins: Vec<String>,
}

/// Why `sources_file` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SourcesFileError {
    #[error("cannot read sources_file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("sources_file {path} is not a list of [[sources]] entries: {message}")]
    Parse { path: String, message: String },
}

/// The shape of `sources_file`: only `[[sources]]` entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    #[serde(default)]
    sources: Vec<SourceConfig>,
}

/// Reads the `[[sources]]` entries of a sources file.
pub fn read_sources_file(path: &str) -> Result<Vec<SourceConfig>, SourcesFileError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| SourcesFileError::Read { path: path.to_owned(), source })?;
    parse_sources(path, &text)
}

/// Parses a sources file's text; `path` only names it in errors.
pub fn parse_sources(path: &str, text: &str) -> Result<Vec<SourceConfig>, SourcesFileError> {
    let file: SourcesFile = toml::from_str(text)
        .map_err(|e| SourcesFileError::Parse { path: path.to_owned(), message: e.message().to_owned() })?;
    Ok(file.sources)
}

fn any_origin() -> Vec<String> {
    vec!["*".to_owned()]
}

impl GatewayConfig {
    /// `[[sources]]` followed by the entries of `sources_file`, if one is set.
    pub fn all_sources(&self) -> Result<Vec<SourceConfig>, SourcesFileError> {
        let mut sources = self.sources.clone();
        if !self.sources_file.is_empty() {
            sources.extend(read_sources_file(&self.sources_file)?);
        }
        Ok(sources)
    }

    /// The topics `clickstream topics apply` creates: `[topics]`, then the fixed topics that
    /// routing produces to (with `topics.partitions`). Dynamic topics are never created.
    pub fn topic_specs(&self) -> Vec<TopicSpec> {
        let mut specs = self.topics.specs();
        for name in self.routing.with_raw_topic(&self.topics.raw).target_topics() {
            if !specs.iter().any(|s| s.name == name) {
                specs.push(TopicSpec {
                    name,
                    partitions: self.topics.partitions,
                    replication: self.topics.replication,
                    cleanup_policy: "delete".to_owned(),
                });
            }
        }
        specs
    }

    /// Producer properties: clickstream's defaults, then `[kafka]` and its passthrough.
    pub fn producer_client_config(&self) -> rdkafka::ClientConfig {
        self.kafka.client_config(&self.producer.properties())
    }

    /// Refuses an event limit the producer cannot send: an event it accepts but librdkafka's
    /// `message.max.bytes` refuses would be answered 413 only after it was judged valid.
    pub fn check_message_size(&self) -> Result<(), String> {
        let client = self.producer_client_config();
        let configured = client.get("message.max.bytes");
        let max_message = match configured.map(str::parse::<usize>) {
            None => LIBRDKAFKA_MESSAGE_MAX_BYTES,
            Some(Ok(bytes)) => bytes,
            Some(Err(_)) => return Err(format!("message.max.bytes {configured:?} is not a number of bytes")),
        };
        let needed = self.limits.max_event_bytes.saturating_add(RECORD_OVERHEAD_BYTES);
        if needed > max_message {
            return Err(format!(
                "limits.max_event_bytes ({}) plus {RECORD_OVERHEAD_BYTES} bytes for a record's key and headers is more than the producer's message.max.bytes ({max_message}); lower the limit or raise message.max.bytes (and the topics' max.message.bytes)",
                self.limits.max_event_bytes
            ));
        }
        Ok(())
    }
}

/// librdkafka's default `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room kept beside an event's payload for its key, headers and record framing.
const RECORD_OVERHEAD_BYTES: usize = 4096;
