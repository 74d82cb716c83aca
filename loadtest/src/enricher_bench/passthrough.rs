//! The benchmark's baseline: a plain consume→produce loop with the enricher's own librdkafka
//! settings, copying each record (key, headers, value) to the same partition of another topic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_enricher::pipeline::{consumer_config, producer_config};
use clickstream_enricher::EnricherConfig;
use clickstream_platform::kafka::send_waiting;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

/// What the loop has done so far.
#[derive(Debug, Default)]
pub struct Counters {
    pub consumed: AtomicU64,
    /// Output records Kafka acknowledged.
    pub delivered: AtomicU64,
}

struct Acks(Arc<Counters>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs until `stop` is set, counting into `counters`. It commits the consumer's position at
/// the enricher's interval without waiting for its outputs: the plainest loop, and so the
/// fastest baseline (it may lose records in a crash, which the enricher may not).
pub fn run(
    config: &EnricherConfig,
    input: &str,
    output: &str,
    counters: &Arc<Counters>,
    stop: &AtomicBool,
) -> Result<(), KafkaError> {
    let consumer: BaseConsumer = consumer_config(config).create()?;
    let producer: BaseProducer<Acks> = producer_config(config).create_with_context(Acks(counters.clone()))?;
    consumer.subscribe(&[input])?;
    let interval = Duration::from_millis(config.enricher.commit_interval_ms.max(10));
    let mut last_commit = Instant::now();
    let mut uncommitted = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            counters.consumed.fetch_add(1, Ordering::Relaxed);
            uncommitted += 1;
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(output).partition(message.partition());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            if let Some(headers) = message.headers() {
                record = record.headers(headers.detach());
            }
            send_waiting(&producer, record)?;
        }
        producer.poll(Duration::ZERO);
        if last_commit.elapsed() >= interval {
            if uncommitted > 0 {
                consumer.commit_consumer_state(CommitMode::Async)?;
                uncommitted = 0;
            }
            last_commit = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Spawns the loop on its own thread, as the enricher runs its pipeline.
pub fn spawn(
    config: EnricherConfig,
    input: String,
    output: String,
) -> (Arc<Counters>, Arc<AtomicBool>, std::thread::JoinHandle<Result<(), KafkaError>>) {
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (counters, stop) = (counters.clone(), stop.clone());
        std::thread::Builder::new()
            .name("passthrough".into())
            .spawn(move || run(&config, &input, &output, &counters, &stop))
            .unwrap_or_else(|e| panic!("cannot start the passthrough thread: {e}"))
    };
    (counters, stop, thread)
}
