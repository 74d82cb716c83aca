//! Reading topics as an outside observer, for the console and `clickstream tail`: a consumer
//! with no group, assigned every partition at a chosen start, that never commits, so it shows
//! up in no consumer group and moves no one's offsets.

use std::collections::HashMap;
use std::time::Duration;

use clickstream_platform::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

/// Where reading a topic starts, on each of its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only records written from now on.
    End,
    /// Everything the topic still holds.
    Beginning,
    /// The last this many records of each partition.
    Last(i64),
    /// Records written at or after this time (ms since the epoch), at most `cap` per partition,
    /// and at least the last `last` of each partition whatever their time.
    Since { ms: i64, cap: i64, last: i64 },
}

/// The end of each assigned partition when reading began: records before it are history,
/// those after it arrived while reading.
pub type StartEnds = HashMap<(String, i32), i64>;

/// A consumer that joins no group and never commits. librdkafka wants a `group.id` even for
/// assigned partitions; a fresh one per reader keeps it from meaning anything.
pub fn observer(kafka: &KafkaConfig) -> Result<BaseConsumer, KafkaError> {
    kafka
        .client_config(&[
            ("group.id", format!("clickstream-observer-{}", uuid::Uuid::now_v7().simple())),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.auto.offset.store", "false".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
            // Small fetches: an observer wants the newest records soon, not throughput.
            ("fetch.wait.max.ms", "100".to_owned()),
            ("queued.max.messages.kbytes", "4096".to_owned()),
        ])
        .create()
}

/// Assigns every partition of `topics`, each from its start. Topics the cluster lacks are
/// skipped and named in the error only when none exists. Blocking.
pub fn assign(consumer: &BaseConsumer, topics: &[(&str, Start)], timeout: Duration) -> Result<StartEnds, KafkaError> {
    let metadata = consumer.fetch_metadata(None, timeout)?;
    let mut list = TopicPartitionList::new();
    let mut ends = StartEnds::new();
    for (topic, start) in topics {
        let Some(found) = metadata.topics().iter().find(|t| t.name() == *topic && t.error().is_none()) else {
            continue;
        };
        for partition in found.partitions() {
            let id = partition.id();
            let (low, high) = consumer.fetch_watermarks(topic, id, timeout)?;
            let offset = match *start {
                Start::End => Offset::Offset(high),
                Start::Beginning => Offset::Offset(low),
                Start::Last(count) => Offset::Offset((high - count).max(low)),
                Start::Since { ms, cap, last } => {
                    let mut query = TopicPartitionList::new();
                    query.add_partition_offset(topic, id, Offset::Offset(ms))?;
                    let found = consumer.offsets_for_times(query, timeout)?;
                    let at = match found.find_partition(topic, id).map(|e| e.offset()) {
                        Some(Offset::Offset(offset)) => offset,
                        _ => high,
                    };
                    // librdkafka's mock cluster answers the end for any time, so `last` keeps
                    // the recent records within reach there too.
                    Offset::Offset(at.min(high - last).max(high - cap).max(low))
                }
            };
            list.add_partition_offset(topic, id, offset)?;
            ends.insert(((*topic).to_owned(), id), high);
        }
    }
    if list.count() == 0 {
        let names: Vec<&str> = topics.iter().map(|(t, _)| *t).collect();
        return Err(KafkaError::MetadataFetch(rdkafka::types::RDKafkaErrorCode::UnknownTopic)).inspect_err(|_| {
            tracing::warn!(topics = ?names, "none of these topics exists");
        });
    }
    consumer.assign(&list)?;
    Ok(ends)
}
