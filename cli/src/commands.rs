//! The small subcommands: `topics apply`, `broker` and `config keys`; and the shutdown signal the
//! long-running ones share.

use std::time::Duration;

use clickstream_gateway::GatewayConfig;
use clickstream_platform::broker::EmbeddedBroker;
use clickstream_platform::kafka::TopicOutcome;
use clickstream_platform::topics::{TopicDef, TopicsFile};

use crate::args::{BrokerArgs, TopicsApplyArgs};

pub async fn topics_apply(args: &TopicsApplyArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let mut defs: Vec<TopicDef> = match &args.file {
        Some(path) => TopicsFile::load(path)?.topics,
        None => crate::enricher::topic_specs(&config, &args.config.load_as()?),
    };
    if let Some(replication) = args.replication {
        defs.iter_mut().for_each(|d| d.replication = replication);
    }
    let outcomes = clickstream_platform::topics::apply(&config.kafka, &defs, Duration::from_secs(15)).await?;
    let drift = print_outcomes(&outcomes);
    if drift {
        anyhow::bail!("some topics differ from the config; nothing was destroyed");
    }
    Ok(())
}

/// Prints what `topics apply` did to each topic, one line each; true when any topic differs
/// from the config (left unchanged).
pub fn print_outcomes(outcomes: &[(String, TopicOutcome)]) -> bool {
    let mut drift = false;
    for (name, outcome) in outcomes {
        drift |= outcome.is_drift();
        match outcome {
            TopicOutcome::Created => println!("created  {name}"),
            TopicOutcome::Exists => println!("exists   {name}"),
            TopicOutcome::FewerPartitions { actual, wanted } => {
                println!("DRIFT    {name}: {actual} partitions, config wants {wanted} (left unchanged)");
            }
            TopicOutcome::MorePartitions { actual, wanted } => {
                println!("note     {name}: {actual} partitions, config says {wanted} (partitions are never removed)");
            }
            TopicOutcome::ConfigDrift { key, actual, wanted } => {
                let actual = if actual.is_empty() { "unset (broker default)" } else { actual.as_str() };
                println!("DRIFT    {name}: {key} is {actual}, config wants {wanted} (left unchanged)");
            }
            TopicOutcome::ConfigUnchecked { reason } => println!("exists   {name} (configs not checked: {reason})"),
        }
    }
    drift
}

pub async fn broker(args: &BrokerArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let broker = EmbeddedBroker::start(args.brokers)?;
    if !args.no_topics {
        create_topics(&broker, &config)?;
    }
    println!("bootstrap.servers={}", broker.bootstrap_servers());
    println!("librdkafka mock cluster: data lives in memory only, about 5 MiB per partition. Ctrl-C stops it.");
    shutdown_signal().await;
    Ok(())
}

/// Creates the configured topics on the embedded broker, whose admin API cannot.
pub fn create_topics(broker: &EmbeddedBroker, config: &GatewayConfig) -> anyhow::Result<()> {
    for spec in crate::enricher::topic_specs(config, &clickstream_enricher::EnricherConfig::default()) {
        broker.create_topic(&spec.name, spec.partitions)?;
    }
    Ok(())
}

pub fn config_keys(markdown: bool) {
    let mut keys = clickstream_platform::config::keys::<GatewayConfig>();
    // The services share `[kafka]`; the enricher's own keys all sit under `enricher.`.
    keys.extend(
        clickstream_platform::config::keys::<clickstream_enricher::EnricherConfig>()
            .into_iter()
            .filter(|k| k.key.starts_with("enricher.")),
    );
    keys.extend(
        clickstream_platform::config::keys::<clickstream_cdc::CdcConfig>()
            .into_iter()
            .filter(|k| k.key.starts_with("cdc.")),
    );
    if markdown {
        println!("| key | env | default | meaning |\n|---|---|---|---|");
        for k in keys {
            println!(
                "| `{}` | `{}` | `{}` | {} |",
                k.key,
                k.env,
                k.default.replace('|', "\\|"),
                k.doc.replace('|', "\\|")
            );
        }
        return;
    }
    for k in keys {
        println!("{:<34} {:<44} {}", k.key, k.env, k.default);
        if !k.doc.is_empty() {
            println!("    {}", k.doc);
        }
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Measured at 10,000 idle keep-alive connections: 30 KB each with transparent huge pages, 18 KB
/// without (docs/performance.md). mimalloc's arenas are huge-page aligned, so with THP set to
/// `always` every sparsely used 2 MiB region is backed whole. The gateway's memory is mostly
/// connections; the enricher, which is CPU-bound, keeps them. `loadtest serve` does the same, so
/// its baselines are measured under the same memory setting as the gateway.
pub fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(%error, "cannot turn transparent huge pages off; memory per connection is higher");
    }
}
