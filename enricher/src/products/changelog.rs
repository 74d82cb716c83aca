//! The product table's changelog topic: each superseded version as one record keyed by product
//! id and valid-from time, timestamped with the time it was superseded so that the topic's
//! `retention.ms` drops it when the table would (as Kafka Streams' versioned stores keep
//! theirs). The products topic is compacted to the last row per product, so these records are
//! the only copy of the history after a restart.

use std::time::Duration;

use clickstream_platform::kafka::{send_threaded_waiting, KafkaConfig};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::versioned::{Basis, Closed, Origin};

/// A changelog record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub id: String,
    pub origin: Origin,
    pub valid_to_ms: i64,
    pub row: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: String,
    valid_from: i64,
    valid_to: i64,
    basis: String,
    partition: i32,
    offset: i64,
    row: Map<String, Value>,
}

/// The record key: one per product and valid-from time, so compaction keeps every version.
pub fn key(closed: &Closed) -> String {
    json!({"id": closed.id, "validFrom": closed.origin.valid_from_ms}).to_string()
}

pub fn value(closed: &Closed) -> String {
    json!({
        "id": closed.id,
        "validFrom": closed.origin.valid_from_ms,
        "validTo": closed.valid_to_ms,
        "basis": closed.origin.basis.as_str(),
        "partition": closed.origin.partition,
        "offset": closed.origin.offset,
        "row": &*closed.row,
    })
    .to_string()
}

/// Reads one changelog record; `None` for a tombstone or a record this version cannot read.
pub fn decode(value: Option<&[u8]>) -> Result<Option<Restored>, String> {
    let Some(bytes) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    let record: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let basis = Basis::parse(&record.basis).ok_or_else(|| format!("unknown basis `{}`", record.basis))?;
    let origin = Origin { valid_from_ms: record.valid_from, basis, partition: record.partition, offset: record.offset };
    Ok(Some(Restored { id: record.id, origin, valid_to_ms: record.valid_to, row: record.row }))
}

/// Writes closed versions to the changelog topic.
pub struct ChangelogWriter {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl std::fmt::Debug for ChangelogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangelogWriter").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl ChangelogWriter {
    pub fn new(kafka: &KafkaConfig, topic: &str) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = kafka
            .client_config(&[
                ("enable.idempotence", "true".to_owned()),
                ("compression.type", "lz4".to_owned()),
                ("allow.auto.create.topics", "false".to_owned()),
                ("linger.ms", "20".to_owned()),
            ])
            .create()?;
        Ok(Self { producer, topic: topic.to_owned() })
    }

    /// Enqueues the records; returns how many were handed to the producer.
    pub fn write(&self, closed: &[Closed]) -> Result<usize, rdkafka::error::KafkaError> {
        for version in closed {
            let (key, value) = (key(version), value(version));
            let record =
                BaseRecord::to(&self.topic).key(key.as_str()).payload(value.as_str()).timestamp(version.valid_to_ms);
            send_threaded_waiting(&self.producer, record)?;
        }
        Ok(closed.len())
    }

    /// Waits for what was written to reach Kafka.
    pub fn flush(&self, timeout: Duration) -> Result<(), rdkafka::error::KafkaError> {
        self.producer.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_closed_version_reads_back_as_written() {
        let row = json!({"id": "p1", "price": 9.5}).as_object().cloned().unwrap_or_default();
        let origin = Origin { valid_from_ms: 1_000, basis: Basis::SourceTs, partition: 2, offset: 40 };
        let closed = Closed { id: "p1".into(), origin, valid_to_ms: 5_000, row: Arc::new(row.clone()) };
        assert_eq!(key(&closed), r#"{"id":"p1","validFrom":1000}"#);
        let restored = decode(Some(value(&closed).as_bytes())).expect("readable").expect("a version");
        assert_eq!(restored, Restored { id: "p1".into(), origin, valid_to_ms: 5_000, row });
        assert_eq!(decode(None), Ok(None));
        assert!(decode(Some(b"{}")).is_err());
    }
}
