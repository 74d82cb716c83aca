//! `clickstream cdc`: PostgreSQL changes into Kafka as Debezium records, with its admin
//! listener (`/metrics`, `/healthz`, `/readyz`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context as _;
use clickstream_cdc::metrics::{CdcMetrics, EXPORTED};
use clickstream_cdc::CancellationToken;
use clickstream_cdc::CdcConfig;
use clickstream_platform::admin::{AdminServer, Readiness};
use clickstream_platform::telemetry::Telemetry;

use crate::args::ConfigArgs;
use crate::commands::shutdown_signal;

pub const SERVICE_NAME: &str = "clickstream-cdc";

pub async fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config: CdcConfig = args.load_as()?;
    let metrics = Arc::new(CdcMetrics::default());
    let telemetry = Arc::new(Telemetry::new(SERVICE_NAME, &config.telemetry)?);
    telemetry.observe_kept(&metrics, EXPORTED);
    let listen = config.cdc.admin.listen.clone();
    let admin = if listen.is_empty() {
        None
    } else {
        let ready = metrics.clone();
        let readiness = Arc::new(move || {
            if ready.streaming.load(Ordering::Relaxed) == 1 {
                Readiness::Ready
            } else {
                Readiness::Unavailable("snapshotting or connecting".to_owned())
            }
        });
        let server = AdminServer::start(&listen, telemetry.clone(), readiness)
            .await
            .with_context(|| format!("binding the cdc admin listener {listen}"))?;
        Some(server)
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: waiting for Kafka to acknowledge what was sent");
        on_signal.cancel();
    });
    let outcome = clickstream_cdc::run(config, metrics, shutdown).await;
    if let Some(admin) = admin {
        admin.shutdown().await;
    }
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    outcome.map_err(Into::into)
}
