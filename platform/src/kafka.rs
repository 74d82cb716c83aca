//! Kafka connection settings, topic specs, and the checks and provisioning built on them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

fn default_bootstrap_servers() -> String {
    "127.0.0.1:9092".to_owned()
}
fn default_client_id() -> String {
    "clickstream".to_owned()
}

/// How to reach Kafka. Security (`security.protocol`, `sasl.*`, `ssl.*`) goes in `properties`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// librdkafka `bootstrap.servers`: comma-separated host:port list.
    pub bootstrap_servers: String,
    /// librdkafka `client.id`, shown in broker logs and quotas.
    pub client_id: String,
    /// Any other librdkafka property, passed through as is (for example
    /// `"security.protocol" = "SASL_SSL"`). These win over every setting clickstream derives.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: default_bootstrap_servers(),
            client_id: default_client_id(),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// A librdkafka config: `defaults` first, then the connection settings, then `properties`.
    pub fn client_config(&self, defaults: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in defaults {
            config.set(*key, value);
        }
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config.set("client.id", &self.client_id);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// A plain client for metadata requests.
    pub fn metadata_client(&self) -> Result<Client<DefaultClientContext>, KafkaError> {
        let config = self.client_config(&[("allow.auto.create.topics", "false".to_owned())]);
        let native = config.create_native_config()?;
        Client::new(&config, native, rdkafka::types::RDKafkaType::RD_KAFKA_PRODUCER, DefaultClientContext)
    }
}

/// Partition counts of the named topics; `None` for a topic the cluster does not have.
/// Blocking: call from a blocking thread.
pub fn topic_partitions<C: ClientContext>(
    client: &Client<C>,
    names: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, Option<usize>>, KafkaError> {
    let metadata = client.fetch_metadata(None, timeout)?;
    let mut found: HashMap<String, Option<usize>> = names.iter().map(|n| ((*n).to_owned(), None)).collect();
    for topic in metadata.topics() {
        if topic.error().is_none() && !topic.partitions().is_empty() {
            if let Some(slot) = found.get_mut(topic.name()) {
                *slot = Some(topic.partitions().len());
            }
        }
    }
    Ok(found)
}

/// Why the topics a service needs cannot be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum TopicCheckError {
    #[error("cannot reach Kafka at {servers} to check topics: {source}")]
    Unreachable { servers: String, source: KafkaError },
    #[error("Kafka at {servers} rejected the SASL credentials (check sasl.mechanism, sasl.username and sasl.password in [kafka.properties]): {reason}")]
    Authentication { servers: String, reason: String },
    #[error("Kafka at {servers} lacks topic(s) {missing}; clickstream never auto-creates topics. Create them with `clickstream topics apply`")]
    Missing { servers: String, missing: String },
}

/// Keeps the latest SASL authentication failure librdkafka reports. A broker that refuses the
/// credentials looks, to a metadata request, just like a silent one (the request times out),
/// so without this a wrong password would read as an outage.
#[derive(Debug, Default)]
struct AuthFailureWatch {
    failure: Mutex<Option<String>>,
}

impl AuthFailureWatch {
    /// The reason of the latest authentication failure, if any was reported.
    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl ClientContext for AuthFailureWatch {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication) {
            *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_owned());
        }
        tracing::warn!(%error, reason, "kafka client error");
    }
}

/// Never produces: only so a [`ThreadedProducer`] (whose thread serves the error callbacks
/// a bare client would leave queued) can carry the watch.
impl ProducerContext for AuthFailureWatch {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Checks that every named topic exists. Blocking: call from a blocking thread.
pub fn require_topics(config: &KafkaConfig, names: &[&str], timeout: Duration) -> Result<(), TopicCheckError> {
    let servers = config.bootstrap_servers.clone();
    let client: ThreadedProducer<AuthFailureWatch> = config
        .client_config(&[("allow.auto.create.topics", "false".to_owned())])
        .create_with_context(AuthFailureWatch::default())
        .map_err(|source| TopicCheckError::Unreachable { servers: servers.clone(), source })?;
    let found =
        topic_partitions(client.client(), names, timeout).map_err(|source| match client.context().failure() {
            Some(reason) => TopicCheckError::Authentication { servers: servers.clone(), reason },
            None => TopicCheckError::Unreachable { servers: servers.clone(), source },
        })?;
    let mut missing: Vec<&str> = names.iter().copied().filter(|n| found.get(*n).is_some_and(Option::is_none)).collect();
    missing.sort_unstable();
    if missing.is_empty() {
        return Ok(());
    }
    Err(TopicCheckError::Missing { servers, missing: missing.join(", ") })
}

/// One topic as it should exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// Kafka `cleanup.policy`: `delete` or `compact`.
    pub cleanup_policy: String,
}

pub use crate::topics::TopicOutcome;

/// Creates the topics that are missing; reports drift on the others without touching them.
/// `topics::apply` does the same for definitions with retention and other configs.
pub async fn apply_topics(
    config: &KafkaConfig,
    specs: &[TopicSpec],
    timeout: Duration,
) -> anyhow::Result<Vec<(String, TopicOutcome)>> {
    let defs: Vec<crate::topics::TopicDef> = specs.iter().map(Into::into).collect();
    crate::topics::apply(config, &defs, timeout).await
}

/// Enqueues `record`, serving delivery callbacks while librdkafka's local queue is full (a
/// full queue means Kafka is behind, not that the record is bad).
pub fn send_waiting<'a, C, K, P>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
) -> Result<(), KafkaError>
where
    C: ProducerContext,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// As [`send_waiting`], for a producer whose own thread serves the callbacks.
pub fn send_threaded_waiting<'a, C, K, P>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
) -> Result<(), KafkaError>
where
    C: ProducerContext + 'static,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error),
        }
    }
}
