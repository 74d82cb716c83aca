//! Loading the product table at start (the changelog's history, then the products topic to
//! its end) and the thread that keeps it current, writes superseded versions to the changelog
//! and drops what retention no longer keeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clickstream_platform::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::changelog::{self, ChangelogWriter};
use super::{Closed, ProductTable, ProductTableStats};
use crate::config::ProductTableSettings;

/// How often the follower drops versions past retention when no change arrives.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

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

/// The topics the table is built from.
#[derive(Debug, Clone, Copy)]
pub struct TableTopics<'a> {
    pub products: &'a str,
    /// The changelog of superseded versions; read and written only when the table is versioned.
    pub versions: &'a str,
}

/// Rebuilds the history from the changelog (versioned tables only), reads the products topic
/// from the beginning to its current end, then follows it on a thread.
pub fn bootstrap(
    kafka: &KafkaConfig,
    topics: TableTopics<'_>,
    settings: &ProductTableSettings,
    stats: Arc<ProductTableStats>,
    timeout: Duration,
) -> Result<(ProductTable, TableFollower), TableError> {
    let table = ProductTable::new(settings, stats);
    let writer = if table.versioned() {
        read_to_end(kafka, topics.versions, timeout, |message| match changelog::decode(message.payload()) {
            Ok(Some(version)) => table.restore(&version.id, version.origin, version.row, version.valid_to_ms),
            Ok(None) => {}
            Err(error) => {
                table.stats().bad_changes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, topic = topics.versions, "skipping unreadable changelog record");
            }
        })?;
        let writer = ChangelogWriter::new(kafka, topics.versions).map_err(kafka_error(topics.versions))?;
        Some(writer)
    } else {
        None
    };
    let restored = table.stats().changelog_restored.load(Ordering::Relaxed);
    let consumer = read_to_end(kafka, topics.products, timeout, |message| {
        let closed = table.apply_record(message.key(), message.payload(), position(message), timestamp(message));
        persist(writer.as_ref(), &table, &closed);
    })?;
    table.prune();
    tracing::info!(
        topic = topics.products,
        products = table.len(),
        versions = table.versions(),
        restored,
        "product table bootstrapped"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (table, stop) = (table.clone(), stop.clone());
        std::thread::Builder::new()
            .name("product-table".into())
            .spawn(move || follow(&consumer, &table, writer.as_ref(), &stop))
            .map_err(|e| TableError::Kafka { topic: topics.products.to_owned(), detail: e.to_string() })?
    };
    Ok((table, TableFollower { stop, thread: Some(thread) }))
}

fn kafka_error(topic: &str) -> impl Fn(rdkafka::error::KafkaError) -> TableError + '_ {
    move |e| TableError::Kafka { topic: topic.to_owned(), detail: e.to_string() }
}

fn position(message: &BorrowedMessage<'_>) -> (i32, i64) {
    (message.partition(), message.offset())
}

fn timestamp(message: &BorrowedMessage<'_>) -> Option<i64> {
    message.timestamp().to_millis()
}

/// Reads every partition of `topic` from the beginning to the end it had when called, and
/// returns the consumer positioned there.
fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<BaseConsumer, TableError> {
    let kafka_error = kafka_error(topic);
    let consumer: BaseConsumer = kafka
        .client_config(&[
            ("group.id", "clickstream-product-table".to_owned()),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
            ("isolation.level", "read_committed".to_owned()),
        ])
        .create()
        .map_err(&kafka_error)?;
    let partitions = clickstream_platform::kafka::topic_partitions(consumer.client(), &[topic], timeout)
        .map_err(&kafka_error)?
        .remove(topic)
        .flatten()
        .ok_or_else(|| TableError::Kafka { topic: topic.to_owned(), detail: "no such topic".to_owned() })?;
    let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).map_err(&kafka_error)?;
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout).map_err(&kafka_error)?;
        ends.insert(partition, (low, high));
    }
    consumer.assign(&assignment).map_err(&kafka_error)?;
    let deadline = Instant::now() + timeout;
    let mut next: HashMap<i32, i64> = HashMap::new();
    // A partition whose records retention deleted starts at its low watermark, not 0.
    while ends.iter().any(|(p, (low, high))| next.get(p).copied().unwrap_or(*low) < *high) {
        if Instant::now() > deadline {
            return Err(TableError::BootstrapTimeout { topic: topic.to_owned(), secs: timeout.as_secs() });
        }
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            let message = result.map_err(&kafka_error)?;
            each(&message);
            next.insert(message.partition(), message.offset() + 1);
        }
    }
    Ok(consumer)
}

fn persist(writer: Option<&ChangelogWriter>, table: &ProductTable, closed: &[Closed]) {
    let Some(writer) = writer.filter(|_| !closed.is_empty()) else { return };
    match writer.write(closed) {
        Ok(written) => {
            table.stats().changelog_written.fetch_add(written as u64, Ordering::Relaxed);
        }
        // The version stays in memory; only a restart before the products topic is compacted
        // would lose it, so this is worth a warning rather than stopping the enricher.
        Err(error) => tracing::warn!(%error, "cannot write product versions to the changelog"),
    }
}

fn follow(consumer: &BaseConsumer, table: &ProductTable, writer: Option<&ChangelogWriter>, stop: &AtomicBool) {
    let throttle = clickstream_platform::logging::LogThrottle::new();
    let mut last_prune = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let closed =
                    table.apply_record(message.key(), message.payload(), position(&message), timestamp(&message));
                persist(writer, table, &closed);
            }
            Some(Err(error)) if throttle.allow() => tracing::warn!(%error, "product table follower"),
            _ => {}
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            table.prune();
            last_prune = Instant::now();
        }
    }
    if let Some(writer) = writer {
        if let Err(error) = writer.flush(Duration::from_secs(5)) {
            tracing::warn!(%error, "product versions not all written to the changelog at shutdown");
        }
    }
}
