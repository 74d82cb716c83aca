//! Starting and stopping the enricher: checks the topics and the broker's transaction
//! support, bootstraps the product table, then runs the pipeline on its own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use clickstream_platform::kafka::{require_topics, topic_partitions, TopicCheckError};

use crate::config::{EnricherConfig, Guarantee};
use crate::enrich::Enrichers;
use crate::metrics::EnricherMetrics;
use crate::pipeline::probe::{probe_transactions, TransactionSupport};
use crate::products::{bootstrap, ProductTable, TableError, TableFollower, TableTopics};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Topics(#[from] TopicCheckError),
    #[error("guarantee `exactly_once_idempotent` writes output partition p for input partition p, so `{output}` needs at least as many partitions as `{input}` ({needed}); it has {has}. Add partitions or use `at_least_once`")]
    TooFewOutputPartitions { output: String, input: String, needed: usize, has: usize },
    #[error("`{watermarks}` keeps the window watermark of repartition partition q in its partition q, so it needs at least as many partitions as `{repartition}` ({needed}); it has {has}")]
    TooFewWatermarkPartitions { watermarks: String, repartition: String, needed: usize, has: usize },
    #[error("guarantee `exactly_once_transactional` needs a broker that enforces Kafka transactions (Apache Kafka 2.5 or later): {0}. On this broker use `exactly_once_idempotent`")]
    Transactions(String),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{0}")]
    GeoIp(String),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot start an enricher pipeline thread: {0}")]
    Thread(std::io::Error),
}

/// A running enricher.
#[derive(Debug)]
pub struct EnricherHandle {
    pub metrics: Arc<EnricherMetrics>,
    pub products: ProductTable,
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _follower: TableFollower,
}

impl EnricherHandle {
    /// Asks the pipeline to commit and leave its group, and waits for it.
    pub fn stop(self) {
        self.shutdown.store(true, Ordering::Relaxed);
        self.wait();
    }

    /// A flag that stops the enricher when set, for signal handlers.
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    /// How many pipeline threads run.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Blocks until the pipeline threads end (after the shutdown flag is set).
    pub fn wait(mut self) {
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Blocking: call from a thread that may block (or `spawn_blocking`).
pub fn start(config: EnricherConfig) -> Result<EnricherHandle, StartError> {
    start_with_metrics(config, Arc::new(EnricherMetrics::default()))
}

/// As `start`, counting into `metrics` (which an admin listener may already export).
pub fn start_with_metrics(config: EnricherConfig, metrics: Arc<EnricherMetrics>) -> Result<EnricherHandle, StartError> {
    let settings = &config.enricher;
    let timeout = Duration::from_secs(settings.startup_timeout_secs.max(1));
    let inputs = config.input_topics();
    let topics = &settings.topics;
    let mut needed: Vec<&str> = inputs.iter().map(String::as_str).collect();
    needed.extend(
        [
            &config.topics.products,
            &topics.enriched,
            &topics.aggregates,
            &topics.repartition,
            &topics.window_watermarks,
            &topics.dlq,
        ]
        .map(String::as_str),
    );
    if settings.products.versioned() {
        needed.push(&topics.product_versions);
    }
    crate::pipeline::validate_clients(&config)?;
    require_topics(&config.kafka, &needed, timeout)?;
    let input_partitions = check_partitions(&config, &inputs, timeout)?;
    if settings.guarantee == Guarantee::ExactlyOnceTransactional {
        match probe_transactions(&config.kafka, timeout) {
            TransactionSupport::Enforced => {}
            TransactionSupport::NotEnforced(why) if settings.allow_unenforced_transactions => {
                tracing::warn!(%why, "running the transactional path on a broker that does not enforce it");
            }
            TransactionSupport::NotEnforced(why) | TransactionSupport::Unsupported(why) => {
                return Err(StartError::Transactions(why))
            }
        }
    }
    let table_topics = TableTopics { products: &config.topics.products, versions: &topics.product_versions };
    let stats = metrics.product_table.clone();
    let (products, follower) = bootstrap(&config.kafka, table_topics, &settings.products, stats, timeout)?;
    let enrichers = Arc::new(Enrichers::new(products.clone(), settings.ip.clone()).map_err(StartError::GeoIp)?);
    let shutdown = Arc::new(AtomicBool::new(false));
    let count = thread_count(settings.threads, input_partitions);
    let mut threads = Vec::with_capacity(count);
    for (index, config) in std::iter::repeat_n(config, count).enumerate() {
        let config = thread_config(config, index, count);
        let (enrichers, metrics, shutdown) = (enrichers.clone(), metrics.clone(), shutdown.clone());
        let name = if count == 1 { "enricher".to_owned() } else { format!("enricher-{index}") };
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || crate::pipeline::run(&config, &enrichers, &metrics, &shutdown, index))
            .map_err(StartError::Thread)?;
        threads.push(thread);
    }
    tracing::info!(threads = count, input_partitions, "enricher pipeline threads started");
    Ok(EnricherHandle { metrics, products, shutdown, threads, _follower: follower })
}

/// `enricher.threads`, or the available cores when 0, and never more threads than input
/// partitions: a thread without a partition would only add a group member.
fn thread_count(configured: usize, input_partitions: usize) -> usize {
    let wanted = if configured == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    } else {
        configured
    };
    wanted.min(input_partitions).max(1)
}

/// One thread's config: with several threads under transactions, each needs its own
/// `transactional.id`, or the threads would fence each other.
fn thread_config(mut config: EnricherConfig, index: usize, count: usize) -> EnricherConfig {
    if count > 1 && config.enricher.guarantee == Guarantee::ExactlyOnceTransactional {
        let base = crate::pipeline::producer_config(&config).get("transactional.id").unwrap_or_default().to_owned();
        config.enricher.producer_properties.insert("transactional.id".to_owned(), format!("{base}-t{index}"));
    }
    config
}

/// Checks that the topics written partition for partition have enough partitions, and returns
/// the most partitions any input topic has.
fn check_partitions(config: &EnricherConfig, inputs: &[String], timeout: Duration) -> Result<usize, StartError> {
    let client = config.kafka.metadata_client()?;
    let topics = &config.enricher.topics;
    let mut names: Vec<&str> = inputs.iter().map(String::as_str).collect();
    names.extend([topics.enriched.as_str(), topics.repartition.as_str(), topics.window_watermarks.as_str()]);
    let counts = topic_partitions(&client, &names, timeout)?;
    let count = |topic: &str| counts.get(topic).copied().flatten().unwrap_or(0);
    if config.enricher.guarantee == Guarantee::ExactlyOnceIdempotent {
        for input in inputs {
            let (needed, has) = (count(input), count(&topics.enriched));
            if needed > has {
                let output = topics.enriched.clone();
                return Err(StartError::TooFewOutputPartitions { output, input: input.clone(), needed, has });
            }
        }
    }
    let (needed, has) = (count(&topics.repartition), count(&topics.window_watermarks));
    if needed > has {
        let (watermarks, repartition) = (topics.window_watermarks.clone(), topics.repartition.clone());
        return Err(StartError::TooFewWatermarkPartitions { watermarks, repartition, needed, has });
    }
    Ok(inputs.iter().map(|input| count(input)).max().unwrap_or(1).max(1))
}
