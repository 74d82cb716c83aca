//! Topic setup and read-back for tests.

use std::time::Duration;

use clickstream_platform::kafka::{apply_topics, KafkaConfig, TopicSpec};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use serde_json::Value;

/// A message read back from Kafka.
#[derive(Debug, Clone)]
pub struct ReadBack {
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub value: Value,
    pub partition: i32,
    /// The record's Kafka timestamp, in ms.
    pub timestamp_ms: Option<i64>,
}

impl ReadBack {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Creates topics through the admin API, as `clickstream topics apply` does.
pub async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    create_topics_as(&KafkaConfig { bootstrap_servers: bootstrap.into(), ..KafkaConfig::default() }, topics).await;
}

/// As [`create_topics`], with the connection (and credentials) of `config`.
pub async fn create_topics_as(config: &KafkaConfig, topics: &[(&str, i32)]) {
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|(name, partitions)| TopicSpec {
            name: (*name).into(),
            partitions: *partitions,
            replication: 1,
            cleanup_policy: "delete".into(),
        })
        .collect();
    apply_topics(config, &specs, Duration::from_secs(10)).await.expect("create topics");
}

/// Reads `count` messages from the start of `topic`, failing if they do not all arrive in
/// `timeout`, then waits briefly to make sure no extra message follows.
pub async fn read_exactly(bootstrap: &str, topic: &str, count: usize, timeout: Duration) -> Vec<ReadBack> {
    read_exactly_as(
        &KafkaConfig { bootstrap_servers: bootstrap.into(), ..KafkaConfig::default() },
        topic,
        count,
        timeout,
    )
    .await
}

/// As [`read_exactly`], with the connection (and credentials) of `config`.
pub async fn read_exactly_as(config: &KafkaConfig, topic: &str, count: usize, timeout: Duration) -> Vec<ReadBack> {
    let consumer: StreamConsumer = config
        .client_config(&[])
        .set("group.id", crate::unique("test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("consumer");
    assign_from_beginning(&consumer, topic);
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < count {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(message) => message.expect("consume"),
            Err(_) => panic!("read {} of {count} messages from {topic} before timing out: {out:#?}", out.len()),
        };
        out.push(to_read_back(&message));
    }
    if let Ok(Ok(extra)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
        panic!("expected exactly {count} messages on {topic}, got another: {:?}", to_read_back(&extra));
    }
    out
}

/// Reads every partition from offset 0 without joining a consumer group: no rebalance, and no
/// session timeout when a broker is slow to serve a large fetch (Tansu's sqlite storage can take
/// seconds for a few MB, long enough to drop a group member and restart its reads).
pub fn assign_from_beginning<C: rdkafka::consumer::ConsumerContext>(consumer: &impl Consumer<C>, topic: &str) {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("topic metadata");
    let partitions = metadata.topics().first().map(|t| t.partitions().len()).unwrap_or_default();
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment.add_partition_offset(topic, partition, rdkafka::Offset::Beginning).expect("offset");
    }
    consumer.assign(&assignment).expect("assign");
}

/// A consumer of `topic` from offset 0 on every partition, outside any group's commits.
fn reader_from_beginning<C>(bootstrap: &str, topic: &str) -> C
where
    C: rdkafka::consumer::Consumer + rdkafka::config::FromClientConfig,
{
    let consumer: C = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique("test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    assign_from_beginning(&consumer, topic);
    consumer
}

fn to_read_back(message: &rdkafka::message::BorrowedMessage<'_>) -> ReadBack {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|header| {
                    (header.key.to_owned(), String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    ReadBack {
        key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        headers,
        value: serde_json::from_slice(message.payload().unwrap_or_default()).expect("message is JSON"),
        partition: message.partition(),
        timestamp_ms: message.timestamp().to_millis(),
    }
}

/// Reads `topic` from the start until `done` holds for what was read, failing after `timeout`.
/// For topics where repeats are allowed (at-least-once outputs).
pub async fn read_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[ReadBack]) -> bool,
) -> Vec<ReadBack> {
    let consumer: StreamConsumer = reader_from_beginning(bootstrap, topic);
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !done(&out) {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(message) => out.push(to_read_back(&message.expect("consume"))),
            Err(_) => panic!("{topic}: condition not met after reading {} messages in {timeout:?}", out.len()),
        }
    }
    out
}

/// Reads `topic` from the start, each message turned into an item by `item`, until `done`
/// holds for what was read and no message has come for `quiet`, or until `timeout` passes
/// (then the caller's assertions say what is missing). Blocking: for tests that watch child
/// processes write a topic.
pub fn read_until_quiet_with<T>(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    quiet: Duration,
    mut item: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> T,
    mut done: impl FnMut(&[T]) -> bool,
) -> Vec<T> {
    let consumer: rdkafka::consumer::BaseConsumer = reader_from_beginning(bootstrap, topic);
    let mut items = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut quiet_since = std::time::Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                items.push(item(&message));
                quiet_since = std::time::Instant::now();
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            None => {}
        }
        if quiet_since.elapsed() >= quiet && done(&items) {
            return items;
        }
        if std::time::Instant::now() > deadline {
            eprintln!("stopped reading {topic} after {timeout:?}, with {} records", items.len());
            return items;
        }
    }
}
