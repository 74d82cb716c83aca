//! The cluster's topics and their partition counts, cached and refreshed in the background, so
//! routing can check that a dynamic topic exists and pick random partitions without asking
//! Kafka on the request path. Topics are never created.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use clickstream_platform::kafka::KafkaConfig;
use clickstream_routing::TopicExistence;
use rdkafka::error::KafkaError;

/// Topic name → partition count, as last seen.
#[derive(Debug, Default)]
pub struct TopicCatalog {
    topics: RwLock<Arc<HashMap<String, i32>>>,
    refreshing: AtomicBool,
}

impl TopicCatalog {
    /// Partitions of `topic`, if the cluster had it at the last refresh.
    pub fn partitions(&self, topic: &str) -> Option<i32> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).get(topic).copied()
    }

    /// A random partition of `topic`, when its partition count is known.
    pub fn random_partition(&self, topic: &str) -> Option<i32> {
        self.partitions(topic).filter(|n| *n > 0).map(|n| fastrand::i32(0..n))
    }

    /// Replaces what is known (a refresh, or a test that knows the topics).
    pub fn replace(&self, topics: HashMap<String, i32>) {
        *self.topics.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(topics);
    }

    /// Reads every topic from the cluster. Blocking: call from a blocking thread.
    pub fn refresh_blocking(&self, kafka: &KafkaConfig, timeout: Duration) -> Result<usize, KafkaError> {
        let client = kafka.metadata_client()?;
        self.refresh_with(&client, timeout)
    }

    fn refresh_with<C: rdkafka::client::ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
        timeout: Duration,
    ) -> Result<usize, KafkaError> {
        let metadata = client.fetch_metadata(None, timeout)?;
        let topics: HashMap<String, i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect();
        let count = topics.len();
        self.replace(topics);
        Ok(count)
    }

    /// Starts refreshing every `every` in the background, once; stops when the catalog is
    /// dropped. A failed refresh keeps the last known topics.
    pub fn spawn_refresher(self: &Arc<Self>, kafka: KafkaConfig, every: Duration) {
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(refresh_loop(weak, kafka, every.max(Duration::from_secs(1))));
    }
}

async fn refresh_loop(catalog: Weak<TopicCatalog>, kafka: KafkaConfig, every: Duration) {
    let client = match kafka.metadata_client() {
        Ok(client) => Arc::new(client),
        Err(error) => {
            tracing::error!(%error, "cannot create the metadata client; dynamic topics will fall back to the default route");
            return;
        }
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(strong) = catalog.upgrade() else { return };
        let client = client.clone();
        let timeout = every.min(Duration::from_secs(10));
        let refreshed = tokio::task::spawn_blocking(move || strong.refresh_with(&client, timeout)).await;
        if let Ok(Err(error)) = refreshed {
            tracing::debug!(%error, "topic list refresh failed; keeping the last one");
        }
    }
}

/// A topic the catalog has not seen does not exist, as far as routing is concerned: producing
/// to it would only time out.
impl TopicExistence for TopicCatalog {
    fn exists(&self, topic: &str) -> Option<bool> {
        Some(self.partitions(topic).is_some())
    }
}
