//! Whether the broker enforces Kafka transactions, found by committing an empty transaction
//! on a scratch `transactional.id`.

use std::time::Duration;

use clickstream_platform::kafka::KafkaConfig;
use rdkafka::producer::{BaseProducer, Producer};

/// What the broker does with transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionSupport {
    Enforced,
    /// The broker accepts the calls but does not enforce them (librdkafka's mock cluster).
    NotEnforced(String),
    Unsupported(String),
}

/// librdkafka's mock cluster names itself this way; it accepts transactions without fencing or
/// hiding aborted records.
const MOCK_CLUSTER_ID_PREFIX: &str = "mockCluster";

pub fn probe_transactions(kafka: &KafkaConfig, timeout: Duration) -> TransactionSupport {
    let id = format!("clickstream-transaction-probe-{}", std::process::id());
    let producer: BaseProducer = match kafka.client_config(&[("transactional.id", id)]).create() {
        Ok(producer) => producer,
        Err(error) => return TransactionSupport::Unsupported(error.to_string()),
    };
    let attempt = producer
        .init_transactions(timeout)
        .and_then(|()| producer.begin_transaction())
        .and_then(|()| producer.commit_transaction(timeout));
    if let Err(error) = attempt {
        return TransactionSupport::Unsupported(error.to_string());
    }
    match producer.client().fetch_cluster_id(timeout) {
        Some(cluster) if cluster.starts_with(MOCK_CLUSTER_ID_PREFIX) => TransactionSupport::NotEnforced(format!(
            "cluster `{cluster}` is librdkafka's mock cluster, which accepts transactions without enforcing them"
        )),
        _ => TransactionSupport::Enforced,
    }
}
