//! `clickstream enricher` and `clickstream products load`, and the enricher's share of the
//! topics `topics apply` and `dev` create.

use std::path::Path;

use std::sync::Arc;

use anyhow::Context as _;
use clickstream_enricher::metrics::EnricherMetrics;
use clickstream_enricher::EnricherConfig;
use clickstream_gateway::GatewayConfig;
use clickstream_platform::admin::AdminServer;
use clickstream_platform::telemetry::Telemetry;
use clickstream_platform::topics::TopicDef;

use crate::args::ConfigArgs;
use crate::commands::shutdown_signal;

pub async fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config: EnricherConfig = args.load_as()?;
    let running = start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: committing and leaving the group");
    running.stop().await
}

/// A running enricher with its admin listener.
#[derive(Debug)]
pub struct RunningEnricher {
    handle: clickstream_enricher::EnricherHandle,
    telemetry: Arc<Telemetry>,
    /// The admin listener's address (`/metrics`, `/healthz`, `/readyz`), unless disabled.
    pub admin: Option<AdminServer>,
}

impl RunningEnricher {
    /// Commits, leaves the group, and flushes telemetry.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.shutdown_flag().store(true, std::sync::atomic::Ordering::Relaxed);
        let handle = self.handle;
        tokio::task::spawn_blocking(move || handle.wait()).await?;
        if let Some(admin) = self.admin {
            admin.shutdown().await;
        }
        let telemetry = self.telemetry;
        tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        Ok(())
    }
}

/// Starts the admin listener (not ready yet), then the enricher off the async runtime (its
/// start-up blocks on Kafka and the product table).
pub async fn start(config: EnricherConfig) -> anyhow::Result<RunningEnricher> {
    let guarantee = config.enricher.guarantee.as_str();
    let metrics = Arc::new(EnricherMetrics::default());
    let telemetry = clickstream_enricher::admin::telemetry(&config, &metrics)?;
    let listen = config.enricher.admin.listen.clone();
    let admin = clickstream_enricher::admin::serve(&config, telemetry.clone(), metrics.clone())
        .await
        .with_context(|| format!("binding the enricher's admin listener {listen}"))?;
    let handle =
        tokio::task::spawn_blocking(move || clickstream_enricher::start_with_metrics(config, metrics)).await??;
    tracing::info!(guarantee, products = handle.products.len(), "enricher running");
    Ok(RunningEnricher { handle, telemetry, admin })
}

pub async fn products_load(file: &Path, valid_from: Option<&str>, args: &ConfigArgs) -> anyhow::Result<()> {
    let config: EnricherConfig = args.load_as()?;
    let valid_from_ms = valid_from
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|time| time.timestamp_millis())
                .with_context(|| format!("--valid-from {text}: not an RFC 3339 time such as 2026-01-01T00:00:00Z"))
        })
        .transpose()?;
    let topic = config.topics.products.clone();
    let path = file.to_owned();
    let count = tokio::task::spawn_blocking(move || {
        clickstream_enricher::products::load_catalog(&config.kafka, &topic, &path, valid_from_ms)
    })
    .await?
    .with_context(|| format!("loading {}", file.display()))?;
    println!("published {count} products to {}", args.load_as::<EnricherConfig>()?.topics.products);
    Ok(())
}

/// Every topic the gateway and the enricher need.
pub fn topic_specs(gateway: &GatewayConfig, enricher: &EnricherConfig) -> Vec<TopicDef> {
    let mut specs: Vec<TopicDef> = gateway.topic_specs().iter().map(Into::into).collect();
    specs.extend(enricher.enricher.topic_specs(gateway.topics.partitions, gateway.topics.replication));
    specs
}
