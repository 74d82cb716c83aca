//! Command-line arguments: subcommands and the config flags they share.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clickstream_gateway::GatewayConfig;

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
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Create the configured topics that are missing; report drift on the others.
    Apply(ConfigArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// List every config key with its environment variable and default.
    Keys {
        /// Print a Markdown table (the README's reference is made this way).
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
