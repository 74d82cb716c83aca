//! The consume–enrich–produce loop: builds the consumer and producer for the configured
//! guarantee, polls, commits at each interval, and rebuilds both after any error so that
//! processing resumes from the last safe point.

mod activities;
mod aggregator;
mod checkpoint;
mod committer;
mod core;
mod group;
pub mod probe;
mod tails;

pub use checkpoint::{
    Checkpoint, HEADER_CHECKPOINT, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickstream_platform::kafka_stats::DEFAULT_STATISTICS_INTERVAL_MS;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use self::committer::{OutputContext, OutputProducer};
use self::core::Core;
use self::group::{GroupConsumer, GroupContext, Settle};
use crate::config::{EnricherConfig, Guarantee};
use crate::enrich::Enrichers;
use crate::metrics::EnricherMetrics;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0} output record(s) were not delivered")]
    Delivery(u64),
    #[error("transaction aborted: {0}")]
    Aborted(String),
    #[error("producer fenced or broken: {0}")]
    Fenced(String),
}

const POLL: Duration = Duration::from_millis(100);
const LAG_INTERVAL: Duration = Duration::from_secs(30);
/// How often a noted commit is checked for delivered outputs.
const SETTLE_CHECK: Duration = Duration::from_millis(100);

/// Runs pipeline thread number `thread` until `shutdown` is set. Errors restart the consumer
/// and producer; this returns only on shutdown.
pub fn run(
    config: &EnricherConfig,
    enrichers: &Arc<Enrichers>,
    metrics: &Arc<EnricherMetrics>,
    shutdown: &AtomicBool,
    thread: usize,
) {
    let throttle = clickstream_platform::logging::LogThrottle::new();
    while !shutdown.load(Ordering::Relaxed) {
        match run_once(config, enrichers, metrics, shutdown, thread) {
            Ok(()) => return,
            Err(error) => {
                metrics.ready.store(0, Ordering::Relaxed);
                EnricherMetrics::add(&metrics.pipeline_restarts, 1);
                if throttle.allow() {
                    tracing::warn!(%error, "enricher pipeline restarting from its last safe point");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn run_once(
    config: &EnricherConfig,
    enrichers: &Arc<Enrichers>,
    metrics: &Arc<EnricherMetrics>,
    shutdown: &AtomicBool,
    thread: usize,
) -> Result<(), PipelineError> {
    let settings = &config.enricher;
    let guarantee = settings.guarantee;
    let producer = Arc::new(create_producer(config, metrics, thread)?);
    let inputs = config.input_topics();
    let repartition_partitions = partition_count(config, &settings.topics.repartition)?;
    let core = Core::new(config.clone(), enrichers.clone(), producer.clone(), metrics.clone(), repartition_partitions);
    let context = GroupContext {
        core: Mutex::new(core),
        failure: Mutex::new(None),
        poisoned: AtomicBool::new(false),
        stats: metrics.consumer_stats.clone(),
        stats_slot: thread,
    };
    let consumer: GroupConsumer = consumer_config(config).create_with_context(context)?;
    let mut topics: Vec<&str> = inputs.iter().map(String::as_str).collect();
    topics.push(&settings.topics.repartition);
    consumer.subscribe(&topics)?;
    metrics.ready.store(1, Ordering::Relaxed);
    let result = poll_loop(&consumer, config, metrics, shutdown);
    if result.is_err() {
        consumer.context().poisoned.store(true, Ordering::Relaxed);
        lock(&consumer.context().core).committer().abort_open();
    }
    if guarantee != Guarantee::ExactlyOnceTransactional {
        // Dropping the consumer leaves the group, and the partitions' next owner (another
        // instance, or this one after a restart) reads the output tails: what this producer
        // has in flight must land before, or it would be written twice.
        if let Err(error) = producer.flush(group::SETTLE_TIMEOUT) {
            tracing::warn!(%error, "outputs still in flight as the pipeline stops; they may repeat");
        }
    }
    close_within(consumer, CLOSE_TIMEOUT);
    result
}

/// Longest wait for the group consumer to leave its group once the outputs have landed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Drops the consumer (which leaves the group) on a thread of its own, and stops waiting after
/// `limit`. rdkafka's drop polls until librdkafka reports the consumer closed, with no bound,
/// and a close that races a rebalance can block for good inside the revoke's `unassign`
/// (fede1024/rust-rdkafka#509; seen against Tansu). Offsets and outputs are settled before
/// this, so an abandoned close costs a thread and a late leave, never a record.
fn close_within(consumer: GroupConsumer, limit: Duration) {
    let (closed, wait) = std::sync::mpsc::channel();
    let closer = std::thread::Builder::new().name("enricher-close".to_owned()).spawn(move || {
        drop(consumer);
        let _ = closed.send(());
    });
    if closer.is_ok() && wait.recv_timeout(limit).is_err() {
        tracing::warn!(
            limit_secs = limit.as_secs(),
            "the group consumer did not close in time; leaving it to finish on its own thread"
        );
    }
}

fn poll_loop(
    consumer: &GroupConsumer,
    config: &EnricherConfig,
    metrics: &EnricherMetrics,
    shutdown: &AtomicBool,
) -> Result<(), PipelineError> {
    let interval = Duration::from_millis(config.enricher.commit_interval_ms.max(10));
    let mut last_commit = Instant::now();
    let mut last_lag = Instant::now();
    let mut last_settle_check = Instant::now();
    // Several pipeline threads add their lag into one gauge: each adds the change in its own.
    let mut lag_reported = 0_i64;
    let result = loop {
        if shutdown.load(Ordering::Relaxed) {
            // A waiting commit flushes the outputs first (transactions commit them instead).
            break lock(&consumer.context().core).commit(consumer, Settle::Wait);
        }
        if let Err(error) = poll_once(consumer) {
            break Err(error);
        }
        let settled = if last_commit.elapsed() >= interval {
            last_commit = Instant::now();
            lock(&consumer.context().core).commit(consumer, Settle::WhenDelivered)
        } else if last_settle_check.elapsed() >= SETTLE_CHECK {
            // A commit noted earlier may have all its outputs delivered by now.
            last_settle_check = Instant::now();
            let mut core = lock(&consumer.context().core);
            let committer = core.committer();
            if committer.has_pending() {
                committer.commit_delivered(consumer)
            } else {
                Ok(())
            }
        } else {
            Ok(())
        };
        if let Err(error) = settled {
            break Err(error);
        }
        if last_lag.elapsed() >= LAG_INTERVAL {
            let now = lag(consumer);
            metrics.consumer_lag.fetch_add(now - lag_reported, Ordering::Relaxed);
            lag_reported = now;
            last_lag = Instant::now();
        }
    };
    metrics.consumer_lag.fetch_sub(lag_reported, Ordering::Relaxed);
    result
}

/// Polls one record, handles it, and serves the producer's delivery reports.
fn poll_once(consumer: &GroupConsumer) -> Result<(), PipelineError> {
    let polled = consumer.poll(POLL);
    if let Some(error) = lock(&consumer.context().failure).take() {
        return Err(error);
    }
    let mut core = lock(&consumer.context().core);
    if let Some(message) = polled {
        let message = message?;
        core.committer().begin()?;
        core.handle(&message)?;
    }
    core.committer().poll()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lag(consumer: &GroupConsumer) -> i64 {
    let Ok(position) = consumer.position() else { return 0 };
    position
        .elements()
        .iter()
        .filter_map(|e| {
            let (_, high) = consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_millis(200)).ok()?;
            Some((high - e.offset().to_raw()?.max(0)).max(0))
        })
        .sum()
}

/// Builds (and drops) the consumer and producer configs, so a bad librdkafka property fails
/// start-up with its message instead of looping in restarts.
pub fn validate_clients(config: &EnricherConfig) -> Result<(), KafkaError> {
    let _: rdkafka::consumer::BaseConsumer = consumer_config(config).create()?;
    let mut producer = producer_config(config);
    producer.remove("transactional.id");
    let _: rdkafka::producer::BaseProducer = producer.create()?;
    Ok(())
}

/// The output producer's librdkafka settings (public so a benchmark's baseline can match them).
pub fn producer_config(config: &EnricherConfig) -> rdkafka::ClientConfig {
    let settings = &config.enricher;
    let mut defaults = settings.producer.properties();
    if settings.guarantee == Guarantee::ExactlyOnceTransactional {
        defaults.push(("transactional.id", transactional_id(&settings.group_id)));
    }
    let mut client = config.kafka.client_config(&defaults);
    for (key, value) in &settings.producer_properties {
        client.set(key, value);
    }
    client
}

fn create_producer(
    config: &EnricherConfig,
    metrics: &Arc<EnricherMetrics>,
    thread: usize,
) -> Result<OutputProducer, PipelineError> {
    let settings = &config.enricher;
    let client = producer_config(config);
    let context = OutputContext::new(metrics.clone(), thread);
    let producer: OutputProducer = client.create_with_context(context)?;
    EnricherMetrics::add(&metrics.producers_created, 1);
    if settings.guarantee == Guarantee::ExactlyOnceTransactional {
        producer.init_transactions(Duration::from_secs(settings.startup_timeout_secs))?;
    }
    Ok(producer)
}

/// Stable per instance where the platform keeps pod names (`HOSTNAME` of a StatefulSet pod, as
/// deploy/k8s runs it), so a restarted instance fences its own zombie. Elsewhere, set
/// `transactional.id` in `enricher.producer_properties`.
fn transactional_id(group: &str) -> String {
    let instance = std::env::var("HOSTNAME").unwrap_or_else(|_| std::process::id().to_string());
    format!("{group}-{instance}")
}

/// The group consumer's librdkafka settings (public so a benchmark's baseline can match them).
pub fn consumer_config(config: &EnricherConfig) -> rdkafka::ClientConfig {
    let settings = &config.enricher;
    let mut client = config.kafka.client_config(&[
        ("group.id", settings.group_id.clone()),
        ("enable.auto.commit", "false".to_owned()),
        ("auto.offset.reset", "earliest".to_owned()),
        // Range assignment gives one instance the same partition number of every input
        // topic, which co-partitioned processing relies on.
        ("partition.assignment.strategy", "range".to_owned()),
        // Only transactional outputs (our own repartition topic) can hold aborted records.
        ("isolation.level", isolation(settings.guarantee).to_owned()),
        ("allow.auto.create.topics", "false".to_owned()),
        ("enable.partition.eof", "false".to_owned()),
        // Fetch sizes and the session timeout are librdkafka's, sized for Kafka. Tansu's sqlite
        // engine wants smaller fetches: see `TANSU_CONSUMER_PROPERTIES`.
        ("statistics.interval.ms", DEFAULT_STATISTICS_INTERVAL_MS.to_string()),
    ]);
    for (key, value) in &settings.consumer_properties {
        client.set(key, value);
    }
    client
}

/// Consumer properties for Tansu with sqlite storage, for `enricher.consumer_properties`. Its
/// engine serves one storage call at a time, heartbeats included, so a large fetch delays the
/// group coordinator; small fetches and a longer session keep the member in its group.
pub const TANSU_CONSUMER_PROPERTIES: [(&str, &str); 3] =
    [("session.timeout.ms", "30000"), ("max.partition.fetch.bytes", "262144"), ("fetch.max.bytes", "1048576")];

/// `read_committed` where transactions exist; elsewhere it only costs brokers work.
pub fn isolation(guarantee: Guarantee) -> &'static str {
    match guarantee {
        Guarantee::ExactlyOnceTransactional => "read_committed",
        Guarantee::AtLeastOnce | Guarantee::ExactlyOnceIdempotent => "read_uncommitted",
    }
}

fn partition_count(config: &EnricherConfig, topic: &str) -> Result<i32, PipelineError> {
    let client = config.kafka.metadata_client()?;
    let counts = clickstream_platform::kafka::topic_partitions(&client, &[topic], Duration::from_secs(10))?;
    let count = counts.get(topic).copied().flatten().unwrap_or(1);
    Ok(i32::try_from(count).unwrap_or(1))
}
