//! Replaying a spool into Kafka: the background loop a running gateway keeps, and
//! `replay_directory`, which empties a spool left behind by a gateway that is gone.

use std::sync::Arc;
use std::time::Duration;

use super::{KafkaSink, Record};
use crate::config::GatewayConfig;
use crate::spool::{Spool, SpoolError};

/// Moves spooled records into Kafka, oldest first; a segment is deleted only after every one
/// of its records has a delivery report.
pub(super) async fn replay(kafka: Arc<KafkaSink>, spool: Arc<Spool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if spool.is_empty() {
            tokio::select! {
                () = spool.arrived.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        if !kafka.is_reachable() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let (batch, mark) = match spool.next_batch().await {
            Ok(Some(next)) => next,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(%error, "cannot read the spool");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let records: Vec<Record> = batch.into_iter().map(|s| s.record).collect();
        if kafka.produce(&records, None).await.iter().all(|ok| *ok) {
            if let Err(error) = spool.commit(mark).await {
                tracing::error!(%error, "cannot advance the spool");
            }
            backoff = Duration::from_millis(100);
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Why a spool directory could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot open the spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("cannot create the Kafka producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    #[error("Kafka at {bootstrap} did not answer within {waited:?}; the spool is untouched")]
    Unreachable { bootstrap: String, waited: Duration },
}

/// What `replay_directory` moved, and what it had to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Records in the spool when it was opened.
    pub found: u64,
    /// Records still there when it stopped (the time ran out, or Kafka went away).
    pub left: u64,
}

/// Replays the spool in `config.spool.dir` into the cluster of `config.kafka`, each record to
/// the topic it was routed to, until it is empty or `timeout` passes. Refuses a directory a
/// running gateway holds. Logs progress every few seconds.
pub async fn replay_directory(config: &GatewayConfig, timeout: Duration) -> Result<ReplayOutcome, ReplayError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let spool = Spool::open(&config.spool)?;
    let found = spool.stats().records;
    if found == 0 {
        return Ok(ReplayOutcome { found, left: 0 });
    }
    let kafka = Arc::new(KafkaSink::new(config)?);
    while !kafka.is_reachable() {
        if tokio::time::Instant::now() >= deadline {
            let bootstrap = config.kafka.bootstrap_servers.clone();
            return Err(ReplayError::Unreachable { bootstrap, waited: timeout });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!(records = found, dir = %spool.dir().display(), "replaying the spool into Kafka");
    let replayer = tokio::spawn(replay(kafka.clone(), spool.clone()));
    let mut next_report = tokio::time::Instant::now() + Duration::from_secs(5);
    while !spool.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if tokio::time::Instant::now() >= next_report {
            tracing::info!(left = spool.stats().records, of = found, "replaying");
            next_report += Duration::from_secs(5);
        }
    }
    replayer.abort();
    let _ = replayer.await;
    // Records of an interrupted batch stay in the spool; what the producer still holds is
    // sent if it can be, and would only repeat at the next replay.
    let _ = kafka.flush(Duration::from_secs(5)).await;
    Ok(ReplayOutcome { found, left: spool.stats().records })
}
