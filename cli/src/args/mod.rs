//! Command-line arguments: subcommands and the config flags they share.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clickstream_gateway::GatewayConfig;

mod loadtest;
pub use loadtest::*;

#[derive(Debug, Parser)]
#[command(name = "clickstream", version, about = "Segment-compatible event ingestion into Kafka")]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub json_logs: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP gateway against a Kafka cluster.
    Gateway(ConfigArgs),
    /// Manage Kafka topics.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Run librdkafka's mock cluster as a local broker and print its bootstrap address.
    Broker(BrokerArgs),
    /// Run the embedded broker, topics and gateway on 127.0.0.1 in one process.
    Dev(DevArgs),
    /// Check topic-routing rules, and explain where events given on stdin would go.
    #[command(alias = "routes")]
    Routing {
        #[command(subcommand)]
        action: RoutingAction,
    },
    /// Check a tracking-plan folder, and explain the violations of events given on stdin.
    Plan {
        #[command(subcommand)]
        action: PlanCommand,
    },
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Load-test the gateway open-loop and plan capacity (`run` is the default).
    Loadtest(Box<LoadtestArgs>),
    /// Run the enricher: product join, sessions, windows, exactly-once outputs.
    Enricher(ConfigArgs),
    /// Stream PostgreSQL changes (logical replication) into Kafka as Debezium change events.
    Cdc(ConfigArgs),
    /// Manage the product catalog topic.
    Products {
        #[command(subcommand)]
        action: ProductsAction,
    },
    /// Follow a topic (events.raw by default) and print each record, coloured on a terminal and
    /// as JSON lines when piped. Reads as no consumer group and commits nothing.
    Tail(TailArgs),
    /// Work with a gateway's disk spool.
    Spool {
        #[command(subcommand)]
        action: SpoolAction,
    },
}

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// The topic, such as events.raw, events.enriched or events.dlq. Default: the config's
    /// `topics.raw`.
    #[arg(long, short)]
    pub topic: Option<String>,
    /// Start at the oldest record the topic holds instead of at its end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after printing this many records.
    #[arg(long, short = 'n')]
    pub count: Option<usize>,
    /// Only records of this source (the `source` header, or a dead letter's source).
    #[arg(long)]
    pub source: Option<String>,
    /// Only events of this name (`event` of a track, `name` of a page or screen; any case).
    #[arg(long)]
    pub event: Option<String>,
    /// Only events of this type (track, page, identify, ...).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Only events with this userId or anonymousId.
    #[arg(long)]
    pub user: Option<String>,
    /// JSON lines even on a terminal.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Subcommand)]
pub enum SpoolAction {
    /// Replay a spool directory into Kafka (one a removed or killed gateway left behind), and
    /// exit 0 once it is empty. Refuses a directory a running gateway holds.
    Replay(SpoolReplayArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SpoolReplayArgs {
    /// The spool directory; default: the config's `spool.dir`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Give up after this many seconds; what is left stays in the directory (exit status 1).
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Subcommand)]
pub enum ProductsAction {
    /// Publish a CSV (with a header row) or JSONL catalog to the products topic, keyed by `id`.
    Load {
        /// The catalog file; `.csv` is read as CSV, anything else as JSON lines.
        file: PathBuf,
        /// When the rows became valid, for the enricher's event-time join (RFC 3339, such as
        /// `2026-01-01T00:00:00Z`); events before it miss them. Default: now.
        #[arg(long)]
        valid_from: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Create the configured topics that are missing; report drift on the others.
    Apply(TopicsApplyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TopicsApplyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A topics.toml (`[[topic]]` tables: name, partitions, replication, cleanup_policy,
    /// retention_ms, config). Without it, the gateway config's `[topics]` are applied.
    #[arg(long, value_name = "TOPICS_TOML")]
    pub file: Option<PathBuf>,
    /// Create topics with this replication factor instead of the file's (a one-broker cluster).
    #[arg(long)]
    pub replication: Option<i32>,
}

#[derive(Debug, Subcommand)]
pub enum RoutingAction {
    /// Validate the `[routing]` section of CONFIG: bad patterns and topic names, shadowed
    /// rules, and topics the broker lacks. With events as JSON on stdin (one, an array, or a
    /// batch), print the topics and key each gets and why.
    Check(RoutingCheckArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RoutingCheckArgs {
    /// The gateway's TOML config file.
    pub config: PathBuf,
    /// Override any key, as `section.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Shorthand for `--set kafka.bootstrap_servers=HOST:PORT`.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// Do not ask the broker which topics exist.
    #[arg(long)]
    pub offline: bool,
    /// Source name the events on stdin come from. Default: the source of the event's
    /// `writeKey`, else the first configured source.
    #[arg(long)]
    pub source: Option<String>,
}

impl RoutingCheckArgs {
    pub fn config_args(&self) -> ConfigArgs {
        ConfigArgs {
            config: Some(self.config.clone()),
            overrides: self.overrides.clone(),
            listen: None,
            kafka_brokers: self.kafka_brokers.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Compile every JSON Schema under PLAN (a `tracking_plan.dir` folder: one subfolder per
    /// source) as the gateway would, and report each problem. With events on stdin as JSON
    /// lines, print the schema each is checked against and its violations; exits 1 when any
    /// event violates the plan.
    Check(PlanCheckArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PlanCheckArgs {
    /// The tracking-plan folder (`tracking_plan.dir`).
    pub plan: PathBuf,
    /// Source whose plan checks the events on stdin. Default: the only source with a plan.
    #[arg(long)]
    pub source: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// List every config key with its environment variable and default.
    Keys {
        /// Print a Markdown table (docs/configuration.md is made this way).
        #[arg(long)]
        markdown: bool,
    },
}

/// Where config comes from: defaults < file < `CLICKSTREAM_<SECTION>__<KEY>` env < flags.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// TOML config file.
    #[arg(long, short, env = "CLICKSTREAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override any key, as `section.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Shorthand for `--set http.listen=ADDR`.
    #[arg(long)]
    pub listen: Option<String>,
    /// Shorthand for `--set kafka.bootstrap_servers=HOST:PORT`.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<GatewayConfig> {
        self.load_as()
    }

    /// The same layers read as another service's config (they share one file).
    pub fn load_as<T: serde::Serialize + serde::de::DeserializeOwned + Default>(&self) -> anyhow::Result<T> {
        let mut overrides = self.overrides.clone();
        if let Some(listen) = &self.listen {
            overrides.push(format!("http.listen={listen}"));
        }
        if let Some(brokers) = &self.kafka_brokers {
            overrides.push(format!("kafka.bootstrap_servers={brokers}"));
        }
        Ok(clickstream_platform::config::load(self.config.as_deref(), std::env::vars(), &overrides)?)
    }
}

#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Number of mock brokers.
    #[arg(long, default_value_t = 1)]
    pub brokers: i32,
    /// Do not create the configured topics.
    #[arg(long)]
    pub no_topics: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address of the dev admin API (`POST /dev/broker/down`, `/dev/broker/up`).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: String,
    /// Do not send the demo events at start.
    #[arg(long)]
    pub no_demo: bool,
}
