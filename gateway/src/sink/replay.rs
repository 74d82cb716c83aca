//! Replaying a spool into Kafka: the background loop a running gateway keeps, and
//! `replay_directory`, which empties a spool left behind by a gateway that is gone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use clickstream_platform::logging::LogThrottle;
use futures::future::BoxFuture;

use super::completion::Delivery;
use super::{KafkaSink, Record};
use crate::config::GatewayConfig;
use crate::spool::{ReplayMark, Spool, SpoolError};

/// A replay step handed to the producer: what to commit, and its delivery reports to come.
type InFlight = (ReplayMark, BoxFuture<'static, Vec<Delivery>>);

/// Moves spooled records into Kafka, oldest first, with up to `spool.replay_in_flight` steps
/// queued in the producer at once; the spool is committed one step at a time, in order, and
/// only past steps whose every record has a delivery report. A segment is deleted only once
/// all of it is committed.
pub(super) async fn replay(kafka: Arc<KafkaSink>, spool: Arc<Spool>) {
    let depth = spool.replay_in_flight();
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(depth);
    let mut backoff = Duration::from_millis(100);
    loop {
        // The idempotent producer keeps each partition in the order records were queued, so
        // queuing step after step keeps the spool's order in Kafka.
        while in_flight.len() < depth && kafka.is_reachable() {
            match spool.next_batch().await {
                Ok(Some((batch, mark))) => {
                    let records: Vec<Record> = batch.into_iter().map(|s| s.record).collect();
                    in_flight.push_back((mark, Box::pin(kafka.enqueue(&records).outcome(None))));
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "cannot read the spool");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        let Some((mark, outcome)) = in_flight.pop_front() else {
            if !kafka.is_reachable() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                tokio::select! {
                    () = spool.arrived.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            continue;
        };
        let delivered = outcome.await;
        // A record Kafka refused for good was logged and counted by the delivery callback; it
        // is committed past like a delivered one, or it would hold back the whole spool.
        let failed = delivered.iter().filter(|delivery| **delivery == Delivery::Failed).count();
        if failed == 0 {
            if let Err(error) = spool.commit(mark).await {
                tracing::error!(%error, "cannot advance the spool");
                abandon(&mut in_flight, &spool).await;
            }
            backoff = Duration::from_millis(100);
        } else {
            // The delivery error itself is logged by the producer's delivery callback.
            static THROTTLE: LogThrottle = LogThrottle::new();
            if THROTTLE.allow() {
                let of = delivered.len();
                tracing::warn!(failed, of, retry_in = ?backoff, "spool replay: Kafka did not take a step's records; sending them again from the first unconfirmed one");
            }
            abandon(&mut in_flight, &spool).await;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// After a failed step: lets the later steps settle (some of their records may land, and
/// will be sent again, as repeats, never skipped), then reads again from the first record
/// Kafka has not confirmed.
async fn abandon(in_flight: &mut VecDeque<InFlight>, spool: &Spool) {
    for (_, outcome) in in_flight.drain(..) {
        let _ = outcome.await;
    }
    spool.rewind();
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
