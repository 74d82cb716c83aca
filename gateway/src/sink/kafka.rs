//! The Kafka sink: an idempotent rdkafka producer whose delivery reports gate the HTTP
//! response, plus a health probe so an unreachable cluster fails fast with 503.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::task::JoinHandle;

use clickstream_platform::telemetry::LogThrottle;

use super::{EventSink, Record, SinkError};
use crate::config::GatewayConfig;

/// Tracks reachability from librdkafka's own error callback, which fires the moment every
/// broker connection is down, well before a metadata probe would time out.
#[derive(Debug, Clone)]
struct ReachabilityContext {
    reachable: Arc<AtomicBool>,
}

impl ClientContext for ReachabilityContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.reachable.store(false, Ordering::SeqCst);
        }
        static THROTTLE: LogThrottle = LogThrottle::new();
        if THROTTLE.allow() {
            tracing::warn!(%error, reason, "kafka client error");
        }
    }
}

/// Produces records to Kafka and waits for their delivery reports.
pub struct KafkaSink {
    producer: FutureProducer<ReachabilityContext>,
    reachable: Arc<AtomicBool>,
    probe: JoinHandle<()>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink").field("reachable", &self.reachable.load(Ordering::SeqCst)).finish()
    }
}

impl KafkaSink {
    /// Builds the producer and starts the health probe on `probe_topic`. Must run inside a
    /// tokio runtime.
    pub fn new(config: &GatewayConfig) -> Result<Self, KafkaError> {
        let reachable = Arc::new(AtomicBool::new(true));
        let context = ReachabilityContext { reachable: reachable.clone() };
        let producer = FutureProducer::from_config_and_context(&config.producer_client_config(), context)?;
        let probe = tokio::spawn(probe(
            producer.clone(),
            reachable.clone(),
            config.topics.raw.clone(),
            Duration::from_millis(config.producer.health_interval_ms.max(50)),
        ));
        Ok(Self { producer, reachable, probe })
    }

    /// Waits for queued records to be delivered, for shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "records still queued at shutdown");
        }
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

/// Marks Kafka reachable while it answers metadata requests for the raw topic.
async fn probe(
    producer: FutureProducer<ReachabilityContext>,
    reachable: Arc<AtomicBool>,
    topic: String,
    every: Duration,
) {
    let timeout = every.max(Duration::from_secs(2));
    loop {
        let client = producer.clone();
        let topic = topic.clone();
        let answered = tokio::task::spawn_blocking(move || client.client().fetch_metadata(Some(&topic), timeout))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
        let was = reachable.swap(answered, Ordering::SeqCst);
        if was != answered {
            tracing::info!(reachable = answered, "kafka reachability changed");
        }
        tokio::time::sleep(every).await;
    }
}

impl EventSink for KafkaSink {
    fn deliver(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if let Some(reason) = self.unavailable_reason() {
                return Err(SinkError::Unavailable(reason));
            }
            let mut pending = Vec::with_capacity(records.len());
            for record in &records {
                let headers = record
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new_with_capacity(record.headers.len()), |h, (key, value)| {
                        h.insert(Header { key: key.as_ref(), value: Some(value.as_bytes()) })
                    });
                let mut message = FutureRecord::to(&record.topic).payload(&record.payload).headers(headers);
                if let Some(key) = &record.key {
                    message = message.key(key.as_bytes());
                }
                match self.producer.send_result(message) {
                    Ok(delivery) => pending.push(delivery),
                    Err((error, _)) => {
                        return Err(SinkError::Unavailable(format!("producer refused the event: {error}")))
                    }
                }
            }
            for outcome in join_all(pending).await {
                match outcome {
                    Ok(Ok(_)) => {}
                    Ok(Err((error, _))) => return Err(SinkError::Unavailable(format!("delivery failed: {error}"))),
                    Err(_) => return Err(SinkError::Unavailable("producer shut down before delivery".into())),
                }
            }
            Ok(())
        })
    }

    fn unavailable_reason(&self) -> Option<String> {
        (!self.reachable.load(Ordering::SeqCst)).then(|| "Kafka brokers are unreachable".to_owned())
    }
}
