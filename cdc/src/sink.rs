//! The Kafka side: produces change records in WAL order and, in that same order, waits for
//! Kafka's acknowledgements; a commit's end LSN is confirmed to the slot only once every
//! record before it is acknowledged, so a crash can repeat changes but never lose one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clickstream_platform::kafka::KafkaConfig;
use pg_walstream::CancellationToken;
use pg_walstream::SharedLsnFeedback;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use tokio::sync::mpsc;

use crate::config::CdcSettings;
use crate::error::CdcError;
use crate::metrics::CdcMetrics;

/// Records in flight before `send` waits for acknowledgements.
const IN_FLIGHT: usize = 100_000;

enum Pending {
    Record(DeliveryFuture),
    /// Everything before this is acknowledged once it is reached: confirm the LSN.
    Confirm {
        lsn: u64,
        commit_ms: i64,
    },
}

/// Produces records and confirms LSNs once Kafka has them.
pub struct Sink {
    producer: FutureProducer,
    pending: mpsc::Sender<Pending>,
    acker: tokio::task::JoinHandle<Result<(), CdcError>>,
    metrics: Arc<CdcMetrics>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

impl Sink {
    /// `failed` is cancelled when a record cannot be delivered, to stop the stream.
    pub fn new(
        kafka: &KafkaConfig,
        settings: &CdcSettings,
        feedback: Option<Arc<SharedLsnFeedback>>,
        metrics: Arc<CdcMetrics>,
        failed: CancellationToken,
    ) -> Result<Self, CdcError> {
        let mut config = kafka.client_config(&settings.producer.properties());
        for (key, value) in &settings.producer_properties {
            config.set(key, value);
        }
        let producer: FutureProducer = config.create().map_err(|e| CdcError::Kafka(e.to_string()))?;
        let (pending, queue) = mpsc::channel(IN_FLIGHT);
        let acker = tokio::spawn(acknowledge(queue, feedback, metrics.clone(), failed));
        Ok(Self { producer, pending, acker, metrics })
    }

    /// Hands one record to the producer; waits while librdkafka's queue is full.
    pub async fn send(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), CdcError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        let delivery = loop {
            match self.producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((error, _)) => return Err(CdcError::Kafka(format!("cannot produce to {topic}: {error}"))),
            }
        };
        self.metrics.records_sent.fetch_add(1, Ordering::Relaxed);
        self.queue(Pending::Record(delivery)).await
    }

    /// Confirms `lsn` to the slot once every record sent so far is acknowledged.
    pub async fn confirm(&self, lsn: u64, commit_ms: i64) -> Result<(), CdcError> {
        self.queue(Pending::Confirm { lsn, commit_ms }).await
    }

    async fn queue(&self, pending: Pending) -> Result<(), CdcError> {
        self.pending.send(pending).await.map_err(|_| CdcError::Kafka("the acknowledgement task stopped".to_owned()))
    }

    /// Waits for every record sent to be acknowledged (or the first failure).
    pub async fn finish(self) -> Result<(), CdcError> {
        let Self { producer, pending, acker, .. } = self;
        drop(pending);
        let outcome = acker.await.map_err(|e| CdcError::Kafka(e.to_string()))?;
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10))).await;
        outcome
    }
}

async fn acknowledge(
    mut queue: mpsc::Receiver<Pending>,
    feedback: Option<Arc<SharedLsnFeedback>>,
    metrics: Arc<CdcMetrics>,
    failed: CancellationToken,
) -> Result<(), CdcError> {
    while let Some(pending) = queue.recv().await {
        match pending {
            Pending::Record(delivery) => {
                let outcome = delivery.await;
                let error = match outcome {
                    Ok(Ok(_)) => None,
                    Ok(Err((error, _))) => Some(error.to_string()),
                    Err(_) => Some("the producer was dropped".to_owned()),
                };
                if let Some(error) = error {
                    failed.cancel();
                    return Err(CdcError::Kafka(format!("a change record was not delivered: {error}")));
                }
                metrics.records_acked.fetch_add(1, Ordering::Relaxed);
            }
            Pending::Confirm { lsn, commit_ms } => {
                if let Some(feedback) = &feedback {
                    feedback.update_flushed_lsn(lsn);
                    feedback.update_applied_lsn(lsn);
                }
                metrics.confirmed_lsn.store(lsn, Ordering::Relaxed);
                if commit_ms > 0 {
                    let lag = chrono::Utc::now().timestamp_millis().saturating_sub(commit_ms).max(0);
                    metrics.lag_ms.store(u64::try_from(lag).unwrap_or_default(), Ordering::Relaxed);
                }
            }
        }
    }
    Ok(())
}
