//! The benchmark's input: simulated visitors' events in the form the gateway writes them to
//! the raw topic, and the sample catalog on the products topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_platform::kafka::{send_threaded_waiting, KafkaConfig};
use clickstream_schema::Event;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

use crate::payload::catalog::Catalog;
use crate::payload::ids::Sequence;
use crate::payload::{Generator, Mode};

/// Events per generated batch; only the generator's chunking, not a Kafka setting.
const CHUNK: usize = 500;

/// `count` raw records (key, event-type header, JSON), as the gateway would have produced
/// them: stamped with a receive time and a client IP.
pub fn raw_events(
    catalog: &Arc<Catalog>,
    count: usize,
    visitors: usize,
    seed: u64,
) -> Vec<(String, &'static str, Vec<u8>)> {
    let mut generator = Generator::new(
        catalog.clone(),
        visitors,
        seed,
        Sequence::new(seed as u32),
        "bench",
        Mode::Batch { events: CHUNK },
    );
    let received_at = chrono::Utc::now();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        for encoded in generator.next_request().events {
            if records.len() == count {
                break;
            }
            let Ok(mut event) = Event::from_slice(&encoded.json) else { continue };
            event.stamp(received_at, None);
            let ip = format!("198.51.{}.{}", rng.u8(..), rng.u8(1..255));
            event.context_mut().insert("ip".into(), Value::String(ip));
            records.push((encoded.key, encoded.kind, event.to_json()));
        }
    }
    records
}

/// Produces the records to `topic` with the gateway's producer settings, printing progress,
/// and waits until Kafka has them all.
pub fn produce_raw(
    kafka: &KafkaConfig,
    topic: &str,
    records: &[(String, &'static str, Vec<u8>)],
) -> Result<(), KafkaError> {
    let producer: ThreadedProducer<DefaultProducerContext> = kafka
        .client_config(&[
            ("enable.idempotence", "true".to_owned()),
            ("acks", "all".to_owned()),
            ("compression.type", "lz4".to_owned()),
            ("linger.ms", "20".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
        ])
        .create()?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    for (sent, (key, kind, json)) in records.iter().enumerate() {
        let headers = OwnedHeaders::new().insert(Header { key: "event-type", value: Some(*kind) });
        let record: BaseRecord<'_, str, [u8]> =
            BaseRecord::to(topic).key(key.as_str()).payload(json.as_slice()).headers(headers);
        send_threaded_waiting(&producer, record)?;
        if last_report.elapsed() > Duration::from_secs(2) {
            println!("  filling {topic}: {sent} of {} events queued", records.len());
            last_report = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(120))?;
    println!("  filled {topic} with {} events in {:.1}s", records.len(), started.elapsed().as_secs_f64());
    Ok(())
}
