//! The enricher's admin listener: its counters and its Kafka clients' statistics as
//! OpenTelemetry instruments (Prometheus scrape and OTLP), and readiness that waits for Kafka
//! and the product table's bootstrap.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use clickstream_platform::admin::{AdminServer, Readiness};
use clickstream_platform::kafka_stats::register_kafka_stats;
use clickstream_platform::telemetry::{Telemetry, TelemetryError};

use crate::config::EnricherConfig;
use crate::metrics::{EnricherMetrics, EXPORTED};

pub const SERVICE_NAME: &str = "clickstream-enricher";

/// Telemetry for `metrics`, exported over OTLP when configured.
pub fn telemetry(config: &EnricherConfig, metrics: &Arc<EnricherMetrics>) -> Result<Arc<Telemetry>, TelemetryError> {
    let telemetry = Arc::new(Telemetry::new(SERVICE_NAME, &config.telemetry)?);
    telemetry.observe_kept(metrics, EXPORTED);
    for (client, cell) in [("consumer", &metrics.consumer_stats), ("producer", &metrics.producer_stats)] {
        telemetry.keep(register_kafka_stats(telemetry.meter(), client, cell));
    }
    Ok(telemetry)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `enricher.admin.listen` (none when empty).
/// Ready once the product table is loaded and the consumer runs.
pub async fn serve(
    config: &EnricherConfig,
    telemetry: Arc<Telemetry>,
    metrics: Arc<EnricherMetrics>,
) -> std::io::Result<Option<AdminServer>> {
    let listen = config.enricher.admin.listen.as_str();
    if listen.is_empty() {
        return Ok(None);
    }
    let readiness = Arc::new(move || {
        if metrics.ready.load(Ordering::Relaxed) == 1 {
            Readiness::Ready
        } else {
            Readiness::Unavailable("waiting for Kafka and the product table".to_owned())
        }
    });
    AdminServer::start(listen, telemetry, readiness).await.map(Some)
}
