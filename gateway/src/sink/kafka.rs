//! The Kafka sink: an idempotent rdkafka producer whose delivery reports gate the response
//! (one completion per batch, see `completion`), a reachability probe (`probe`) so an
//! unreachable cluster is known at once, and a fresh producer after a fatal idempotence error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::Message as _;
use tokio::task::JoinHandle;

use clickstream_platform::kafka_stats::KafkaStatsCell;
use clickstream_platform::logging::LogThrottle;
use opentelemetry::metrics::Histogram;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Tracer;

use super::completion::{Backlog, Delivery, Pending, Ticket};
use super::probe::{probe, ReachabilityProof};
use super::shedding::Shedder;
use super::{EventSink, Record, SinkError, SinkHealth};
use crate::config::GatewayConfig;

#[derive(Debug, Default)]
pub(super) struct Flags {
    pub(super) reachable: AtomicBool,
    /// The producer must be replaced before the next send.
    pub(super) replace: AtomicBool,
    /// Why the brokers last refused the SASL credentials, until they answer again: readiness
    /// names it, so a wrong or revoked password does not read as an outage.
    pub(super) auth_failure: Mutex<Option<String>>,
}

/// Hears librdkafka's global errors: every broker down (known well before a probe times out)
/// and fatal idempotence errors, after which the producer must be replaced.
#[derive(Debug, Clone)]
pub(super) struct SinkContext {
    flags: Arc<Flags>,
    stats: Arc<KafkaStatsCell>,
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.stats.record(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => self.flags.reachable.store(false, Ordering::SeqCst),
            Some(RDKafkaErrorCode::Fatal) => self.flags.replace.store(true, Ordering::SeqCst),
            Some(RDKafkaErrorCode::Authentication) => {
                *self.flags.auth_failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_owned());
            }
            _ => {}
        }
        static THROTTLE: LogThrottle = LogThrottle::new();
        if THROTTLE.allow() {
            tracing::warn!(%error, reason, "kafka client error");
        }
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = Box<Ticket>;

    fn delivery(&self, report: &DeliveryResult<'_>, ticket: Box<Ticket>) {
        let mut delivery = Delivery::Confirmed;
        if let Err((error, message)) = report {
            delivery = classify(error);
            if delivery == Delivery::Rejected {
                log_rejected(error, message.topic());
            } else if error.rdkafka_error_code().is_some_and(producer_id_refused) {
                // Not a fatal error to librdkafka, yet every later record of this producer
                // fails the same way, spool replays included: the next batch gets a new one.
                self.flags.replace.store(true, Ordering::SeqCst);
                static THROTTLE: LogThrottle = LogThrottle::new();
                if THROTTLE.allow() {
                    tracing::warn!(%error, "the broker refused the producer's id or epoch; replacing the producer");
                }
            } else {
                // The request's records are spooled (or, with no spool, it is answered 503),
                // or the spool's stay there for the next replay step. Without this line an
                // outage that only fails deliveries (a broker refusing every record) would
                // leave no trace in the log. One line a second at most; the error names the
                // cause, a local one (a timeout, the shutdown purge) included.
                static THROTTLE: LogThrottle = LogThrottle::new();
                if THROTTLE.allow() {
                    tracing::warn!(%error, topic = message.topic(), "a record was not delivered");
                }
            }
        }
        (*ticket).settle(delivery);
    }
}

/// A record Kafka will never take, whatever is retried: too large for the producer's
/// `message.max.bytes` (refused before it is sent) or for the topic's `max.message.bytes`.
fn classify(error: &KafkaError) -> Delivery {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge) => Delivery::Rejected,
        _ => Delivery::Failed,
    }
}

/// Such a record is dropped, not spooled: kept, it would stop every record behind it.
fn log_rejected(error: &KafkaError, topic: &str) {
    static THROTTLE: LogThrottle = LogThrottle::new();
    if THROTTLE.allow() {
        tracing::error!(%error, topic, "Kafka refused a record for good; it is dropped, not retried (raise message.max.bytes, or lower limits.max_event_bytes)");
    }
}

/// Delivery errors that say the broker no longer takes this idempotent producer's id, epoch or
/// sequence: Tansu answers `ProducerFenced` to every record once librdkafka has bumped the
/// producer's epoch (as it does after a purge of queued records).
fn producer_id_refused(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::InvalidProducerIdMapping
    )
}

pub(super) type Producer_ = ThreadedProducer<SinkContext>;

/// Produces records to Kafka and reports which were delivered.
pub struct KafkaSink {
    client_config: ClientConfig,
    /// Shared with the probe, which asks the producer's own connections.
    producer: Arc<RwLock<Producer_>>,
    flags: Arc<Flags>,
    stats: Arc<KafkaStatsCell>,
    probe: JoinHandle<()>,
    /// Records queued and not yet reported, shared with every batch's countdown.
    backlog: Arc<Backlog>,
    shedder: Shedder,
    tracer: Option<Tracer>,
    produce_duration: Option<Histogram<f64>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink").field("reachable", &self.is_reachable()).finish()
    }
}

impl KafkaSink {
    /// Builds the producer and starts the reachability probe. Must run inside tokio.
    pub fn new(config: &GatewayConfig) -> Result<Self, KafkaError> {
        let flags = Arc::new(Flags { reachable: AtomicBool::new(true), ..Flags::default() });
        let client_config = config.producer_client_config();
        let stats = Arc::new(KafkaStatsCell::default());
        let context = SinkContext { flags: flags.clone(), stats: stats.clone() };
        let producer = Producer_::from_config_and_context(&client_config, context)?;
        let producer = Arc::new(RwLock::new(producer));
        let every = Duration::from_millis(config.delivery.kafka_health_interval_ms.max(50));
        let backlog = Arc::new(Backlog::default());
        let proof = ReachabilityProof::of(&client_config);
        let probe = tokio::spawn(probe(
            producer.clone(),
            flags.clone(),
            backlog.clone(),
            config.topics.raw.clone(),
            every,
            proof,
        ));
        let shed_wait = Duration::from_millis(config.delivery.shed_wait_ms);
        let up = flags.clone();
        let shedder = Shedder::new(backlog.clone(), shed_wait, move || up.reachable.load(Ordering::SeqCst));
        Ok(Self {
            client_config,
            producer,
            flags,
            stats,
            probe,
            backlog,
            shedder,
            tracer: None,
            produce_duration: None,
        })
    }

    /// Spans for produce and delivery under traced requests, and the produce-latency histogram.
    pub fn with_telemetry(mut self, tracer: Option<Tracer>, produce_duration: Histogram<f64>) -> Self {
        self.tracer = tracer;
        self.produce_duration = Some(produce_duration);
        self
    }

    /// The latest librdkafka statistics of the producer (`statistics.interval.ms`).
    pub fn statistics(&self) -> Arc<KafkaStatsCell> {
        self.stats.clone()
    }

    pub fn is_reachable(&self) -> bool {
        self.flags.reachable.load(Ordering::SeqCst)
    }

    /// Why Kafka cannot be used, for readiness: refused credentials when the brokers said so.
    pub fn unreachable_reason(&self) -> String {
        match self.flags.auth_failure.lock().unwrap_or_else(PoisonError::into_inner).as_deref() {
            Some(reason) => format!("Kafka rejected the SASL credentials: {reason}"),
            None => "Kafka brokers are unreachable".to_owned(),
        }
    }

    fn producer(&self) -> Producer_ {
        if self.flags.replace.swap(false, Ordering::SeqCst) {
            let context = SinkContext { flags: self.flags.clone(), stats: self.stats.clone() };
            match Producer_::from_config_and_context(&self.client_config, context) {
                Ok(fresh) => {
                    tracing::info!("replacing the producer (after a fatal error or an outage)");
                    *self.producer.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                }
                Err(error) => tracing::error!(%error, "cannot replace the failed producer"),
            }
        }
        self.producer.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues every record; the result resolves once each has a delivery report (a record
    /// the producer refused, for a full queue or an unknown topic, counts as failed at once).
    pub fn enqueue(&self, records: &[Record]) -> Pending {
        let producer = self.producer();
        let mut pending = Pending::new(records.len(), &self.backlog);
        for (index, record) in records.iter().enumerate() {
            let headers = record
                .headers
                .pairs()
                .fold(OwnedHeaders::new_with_capacity(record.headers.len()), |headers, (key, value)| {
                    headers.insert(Header { key, value: Some(value.as_bytes()) })
                });
            let mut message = BaseRecord::with_opaque_to(&record.topic, pending.ticket(index))
                .payload(&record.payload)
                .headers(headers);
            if let Some(key) = &record.key {
                message = message.key(key.as_bytes());
            }
            if let Some(partition) = record.partition {
                message = message.partition(partition);
            }
            if let Err((error, refused)) = producer.send(message) {
                let delivery = classify(&error);
                if delivery == Delivery::Rejected {
                    log_rejected(&error, &record.topic);
                } else {
                    pending.refuse(index);
                }
                refused.delivery_opaque.settle(delivery);
            }
        }
        pending
    }

    /// Produces the records and reports, per record, whether Kafka confirmed it before
    /// `deadline` (or before librdkafka's own `message.timeout.ms` when there is none).
    pub async fn produce(&self, records: &[Record], deadline: Option<Duration>) -> Vec<Delivery> {
        let started = std::time::Instant::now();
        let producing = crate::trace::child_of_current(self.tracer.as_ref(), "produce", records.len());
        let pending = self.enqueue(records);
        drop(producing);
        let _delivering = crate::trace::child_of_current(self.tracer.as_ref(), "delivery", records.len());
        let outcome = pending.outcome(deadline).await;
        if let Some(histogram) = &self.produce_duration {
            let delivered =
                if outcome.iter().all(|delivery| *delivery == Delivery::Confirmed) { "delivered" } else { "failed" };
            histogram.record(started.elapsed().as_secs_f64(), &[KeyValue::new("outcome", delivered)]);
        }
        outcome
    }

    /// Drops queued (not yet sent) messages, at shutdown, so that records about to be spooled
    /// are not also delivered later, out of order. Producer-wide, and librdkafka bumps an
    /// idempotent producer's epoch after it, so it is not for a running gateway's requests.
    pub fn purge_queued(&self) {
        self.producer().purge(PurgeConfig::default().queue());
    }

    /// Records Kafka refused for good since start, and dropped.
    pub fn rejected(&self) -> u64 {
        self.backlog.rejected()
    }

    /// Waits up to `timeout` for queued records to be delivered; false if some are left.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let producer = self.producer();
        tokio::task::spawn_blocking(move || producer.flush(timeout).is_ok()).await.unwrap_or(false)
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

/// A request's answer once its records are reported: what Kafka refused for good is the
/// client's to fix (a smaller event), what merely failed is worth a retry.
pub(super) fn settled(outcome: &[Delivery]) -> Result<(), SinkError> {
    let count = |kind: Delivery| outcome.iter().filter(|delivery| **delivery == kind).count();
    match (count(Delivery::Rejected), count(Delivery::Failed)) {
        (0, 0) => Ok(()),
        (0, failed) => Err(SinkError::Unavailable(format!("{failed} of {} events were not delivered", outcome.len()))),
        (rejected, _) => Err(SinkError::Rejected(format!(
            "Kafka refused {rejected} of {} events as larger than its message size limit",
            outcome.len()
        ))),
    }
}

/// Without a spool: a 200 needs every record delivered, else the client retries on 503.
impl EventSink for KafkaSink {
    fn deliver(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if !self.is_reachable() {
                return Err(SinkError::Unavailable("Kafka brokers are unreachable".into()));
            }
            let outcome = self.produce(&records, None).await;
            settled(&outcome)
        })
    }

    fn rejected_by_kafka(&self) -> u64 {
        self.rejected()
    }

    fn shed(&self) -> Option<Duration> {
        self.is_reachable().then(|| self.shedder.expected_wait()).flatten()
    }

    fn health(&self) -> SinkHealth {
        if self.is_reachable() {
            SinkHealth::Ready
        } else {
            SinkHealth::Unavailable(self.unreachable_reason())
        }
    }

    fn shutdown(&self, deadline: tokio::time::Instant) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.flush(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
                tracing::warn!("records still queued at shutdown");
            }
        })
    }
}
