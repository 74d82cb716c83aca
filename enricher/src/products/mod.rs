//! The product table: the compacted `products` topic read into memory (the table side of the
//! table–stream duality), bootstrapped to the topic's end before clicks are processed and then
//! kept current by a follower thread.

mod change;
mod load;

pub use change::{parse_change, ChangeError, ProductChange};
pub use load::{load_catalog, parse_catalog, publish_catalog, read_catalog, CatalogError};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clickstream_platform::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Map, Value};

/// One product's columns, shared with the events that joined it.
pub type ProductRow = Arc<Map<String, Value>>;

/// Product rows by id, shared between the follower thread and the processors.
#[derive(Debug, Clone, Default)]
pub struct ProductTable {
    rows: Arc<RwLock<HashMap<String, ProductRow>>>,
    changes_applied: Arc<AtomicU64>,
    bad_changes: Arc<AtomicU64>,
}

impl ProductTable {
    pub fn get(&self, id: &str) -> Option<ProductRow> {
        self.rows.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.rows.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes applied since start, for metrics and tests.
    pub fn changes_applied(&self) -> u64 {
        self.changes_applied.load(Ordering::Relaxed)
    }

    /// Records of the products topic that could not be read.
    pub fn bad_changes(&self) -> u64 {
        self.bad_changes.load(Ordering::Relaxed)
    }

    pub fn apply(&self, change: ProductChange) {
        let mut rows = self.rows.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match change {
            ProductChange::Upsert { id, row } => {
                rows.insert(id, Arc::new(row));
            }
            ProductChange::Delete { id } => {
                rows.remove(&id);
            }
            ProductChange::Truncate => rows.clear(),
            ProductChange::Ignore => return,
        }
        self.changes_applied.fetch_add(1, Ordering::Relaxed);
    }

    fn apply_record(&self, key: Option<&[u8]>, value: Option<&[u8]>) {
        match parse_change(key, value) {
            Ok(change) => self.apply(change),
            Err(error) => {
                self.bad_changes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "skipping unreadable product record");
            }
        }
    }
}

/// Keeps the table current until dropped.
#[derive(Debug)]
pub struct TableFollower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for TableFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read the products topic `{topic}`: {detail}")]
    Kafka { topic: String, detail: String },
    #[error("the products topic `{topic}` was not read to its end within {secs} s")]
    BootstrapTimeout { topic: String, secs: u64 },
}

/// Reads `topic` from the beginning to its current end, then follows it on a thread.
pub fn bootstrap(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<(ProductTable, TableFollower), TableError> {
    let kafka_error =
        |e: rdkafka::error::KafkaError| TableError::Kafka { topic: topic.to_owned(), detail: e.to_string() };
    let consumer: BaseConsumer = kafka
        .client_config(&[
            ("group.id", "clickstream-product-table".to_owned()),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
            ("isolation.level", "read_committed".to_owned()),
        ])
        .create()
        .map_err(kafka_error)?;
    let partitions = clickstream_platform::kafka::topic_partitions(consumer.client(), &[topic], timeout)
        .map_err(kafka_error)?
        .remove(topic)
        .flatten()
        .ok_or_else(|| TableError::Kafka { topic: topic.to_owned(), detail: "no such topic".to_owned() })?;
    let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).map_err(kafka_error)?;
        let (_, high) = consumer.fetch_watermarks(topic, partition, timeout).map_err(kafka_error)?;
        ends.insert(partition, high);
    }
    consumer.assign(&assignment).map_err(kafka_error)?;
    let table = ProductTable::default();
    let deadline = Instant::now() + timeout;
    let mut next: HashMap<i32, i64> = HashMap::new();
    while ends.iter().any(|(p, high)| next.get(p).copied().unwrap_or(0) < *high) {
        if Instant::now() > deadline {
            return Err(TableError::BootstrapTimeout { topic: topic.to_owned(), secs: timeout.as_secs() });
        }
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            let message = result.map_err(kafka_error)?;
            table.apply_record(message.key(), message.payload());
            next.insert(message.partition(), message.offset() + 1);
        }
    }
    tracing::info!(topic, products = table.len(), "product table bootstrapped");
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (table, stop) = (table.clone(), stop.clone());
        std::thread::Builder::new()
            .name("product-table".into())
            .spawn(move || follow(&consumer, &table, &stop))
            .map_err(|e| TableError::Kafka { topic: topic.to_owned(), detail: e.to_string() })?
    };
    Ok((table, TableFollower { stop, thread: Some(thread) }))
}

fn follow(consumer: &BaseConsumer, table: &ProductTable, stop: &AtomicBool) {
    let throttle = clickstream_platform::logging::LogThrottle::new();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => table.apply_record(message.key(), message.payload()),
            Some(Err(error)) if throttle.allow() => tracing::warn!(%error, "product table follower"),
            _ => {}
        }
    }
}
