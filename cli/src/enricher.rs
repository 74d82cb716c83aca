//! `clickstream enricher` and `clickstream products load`, and the enricher's share of the
//! topics `topics apply` and `dev` create.

use std::path::Path;

use anyhow::Context as _;
use clickstream_enricher::EnricherConfig;
use clickstream_gateway::GatewayConfig;
use clickstream_platform::kafka::TopicSpec;

use crate::args::ConfigArgs;
use crate::commands::shutdown_signal;

pub async fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config: EnricherConfig = args.load_as()?;
    let handle = start(config).await?;
    let stop = handle.shutdown_flag();
    shutdown_signal().await;
    tracing::info!("shutting down: committing and leaving the group");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::task::spawn_blocking(move || handle.wait()).await?;
    Ok(())
}

/// Starts the enricher off the async runtime (its startup blocks on Kafka).
pub async fn start(config: EnricherConfig) -> anyhow::Result<clickstream_enricher::EnricherHandle> {
    let guarantee = config.enricher.guarantee.as_str();
    let handle = tokio::task::spawn_blocking(move || clickstream_enricher::start(config)).await??;
    tracing::info!(guarantee, products = handle.products.len(), "enricher running");
    Ok(handle)
}

pub async fn products_load(file: &Path, args: &ConfigArgs) -> anyhow::Result<()> {
    let config: EnricherConfig = args.load_as()?;
    let topic = config.enricher.topics.products.clone();
    let path = file.to_owned();
    let count =
        tokio::task::spawn_blocking(move || clickstream_enricher::products::load_catalog(&config.kafka, &topic, &path))
            .await?
            .with_context(|| format!("loading {}", file.display()))?;
    println!("published {count} products to {}", args.load_as::<EnricherConfig>()?.enricher.topics.products);
    Ok(())
}

/// Every topic the gateway and the enricher need.
pub fn topic_specs(gateway: &GatewayConfig, enricher: &EnricherConfig) -> Vec<TopicSpec> {
    let mut specs = gateway.topic_specs();
    specs.extend(enricher.enricher.topic_specs(gateway.topics.partitions, gateway.topics.replication));
    specs
}
