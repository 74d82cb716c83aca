//! The reachability probe: whether Kafka answers, from confirmed records or, when none
//! come, from a metadata request for the raw topic.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::Producer;

use super::completion::Backlog;
use super::kafka::{Flags, Producer_};

/// Marks Kafka reachable while it confirms records or answers metadata requests for the raw
/// topic. While records are confirmed, no metadata request is sent: a broker answers the
/// requests of one connection in order, so a slow metadata answer (Tansu's takes milliseconds
/// on a busy machine) would hold back every produce response queued behind it.
pub(super) async fn probe(
    producer: Arc<RwLock<Producer_>>,
    flags: Arc<Flags>,
    backlog: Arc<Backlog>,
    topic: String,
    every: Duration,
    proof: ReachabilityProof,
) {
    let timeout = every.max(Duration::from_secs(2));
    let mut confirmed = backlog.confirmed();
    loop {
        let confirmed_before = std::mem::replace(&mut confirmed, backlog.confirmed());
        // When confirmations answer, nothing is written: reachable already says so, and
        // writing it again could undo an all-brokers-down error reported in between.
        let answered = proof == ReachabilityProof::Confirmations
            && answering(flags.reachable.load(Ordering::SeqCst), confirmed_before, confirmed);
        if !answered {
            ask_metadata(&producer, &flags, &topic, timeout).await;
        }
        tokio::time::sleep(every).await;
    }
}

/// Asks for the raw topic's metadata and marks Kafka reachable or not by the answer; a change
/// to reachable replaces the producer.
async fn ask_metadata(producer: &RwLock<Producer_>, flags: &Flags, topic: &str, timeout: Duration) {
    let producer = producer.read().unwrap_or_else(|p| p.into_inner()).clone();
    let topic = topic.to_owned();
    let answered = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(Some(&topic), timeout).is_ok())
        .await
        .unwrap_or(false);
    if answered {
        *flags.auth_failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
    if flags.reachable.swap(answered, Ordering::SeqCst) != answered {
        tracing::info!(reachable = answered, "kafka reachability changed");
        if answered {
            // A broker that restarted may have lost the idempotent producer's state; a new
            // producer id avoids sequence errors (and crashes Tansu 0.6 on sqlite otherwise).
            flags.replace.store(true, Ordering::SeqCst);
        }
    }
}

/// What shows the probe that Kafka answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReachabilityProof {
    /// Confirmed records, or else a metadata answer.
    Confirmations,
    /// Only a metadata answer: with `acks=0` librdkafka confirms a record once it is written to
    /// the socket, without any answer, so a hung broker would still confirm records.
    MetadataOnly,
}

impl ReachabilityProof {
    pub(super) fn of(client: &ClientConfig) -> Self {
        // librdkafka's own reading: `request.required.acks` is another name for `acks`, and
        // when both are set, which one wins depends on the order they are applied in.
        let acks = client.create_native_config().ok().and_then(|native| native.get("acks").ok());
        if acks.as_deref().map(str::trim) == Some("0") {
            Self::MetadataOnly
        } else {
            Self::Confirmations
        }
    }
}

/// Whether Kafka has shown it answers without a metadata request: it was reachable at the last
/// check and has confirmed records since. After an outage only a metadata answer counts, so a
/// late confirmation of a record sent before it cannot end the outage early.
fn answering(was_reachable: bool, confirmed_before: u64, confirmed_now: u64) -> bool {
    was_reachable && confirmed_now > confirmed_before
}

#[cfg(test)]
mod tests {
    use super::{answering, ReachabilityProof};

    #[test]
    fn confirmations_stand_for_a_metadata_answer_only_while_reachable() {
        assert!(answering(true, 10, 11), "records confirmed since the last check");
        assert!(!answering(true, 10, 10), "nothing confirmed: ask for metadata");
        assert!(!answering(false, 10, 50), "after an outage, only a metadata answer counts");
    }

    #[test]
    fn without_broker_acknowledgements_only_metadata_shows_reachability() {
        let mut client = rdkafka::ClientConfig::new();
        assert_eq!(ReachabilityProof::of(&client), ReachabilityProof::Confirmations, "librdkafka's default acks");
        client.set("acks", "all");
        assert_eq!(ReachabilityProof::of(&client), ReachabilityProof::Confirmations);
        client.set("acks", "0");
        assert_eq!(ReachabilityProof::of(&client), ReachabilityProof::MetadataOnly);
        let mut aliased = rdkafka::ClientConfig::new();
        aliased.set("request.required.acks", "0");
        assert_eq!(ReachabilityProof::of(&aliased), ReachabilityProof::MetadataOnly);
    }
}
