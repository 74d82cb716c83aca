//! End-to-end matching: consumers on `events.raw` (and `events.enriched` when it exists) read
//! the run's events back by message id, giving HTTP→Kafka latency from the intended send time
//! and loss: events acknowledged with a 2xx but never seen.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use clickstream_platform::kafka::KafkaConfig;

use crate::bitset::BitSet;
use crate::clock::Clock;
use crate::payload::ids::MessageTag;
use crate::stats::{phase_histogram, record, Percentiles};

/// What to read back.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    pub kafka: KafkaConfig,
    /// The raw topic the events land in.
    pub raw_topic: String,
    /// The enricher's output topic; measured only when it exists.
    pub enriched_topic: Option<String>,
    /// How long to keep waiting for missing events once no new one arrives.
    pub drain: Duration,
}

/// What matching found on one topic.
#[derive(Debug, Clone, Serialize)]
pub struct TopicMatch {
    pub topic: String,
    /// `HTTP→Kafka` or `HTTP→enriched`.
    pub path: String,
    pub present: bool,
    /// Acknowledged events read back.
    pub seen: u64,
    /// Acknowledged events never read back.
    pub lost: u64,
    /// Events read back whose request did not get a 2xx (timeouts, 503 after a partial write).
    pub seen_unacknowledged: u64,
    /// Events written to the log more than once (distinct offsets, same message id).
    pub duplicates: u64,
    /// Records the consumer was handed again at an offset it had already read: a broker or
    /// client artefact, not a duplicate in the log.
    pub redelivered: u64,
    /// From the intended send time to the consumer receiving the event.
    pub latency: Percentiles,
}

/// The end-to-end result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct E2eResult {
    pub sent_events: u64,
    pub acknowledged_events: u64,
    pub topics: Vec<TopicMatch>,
}

#[derive(Debug)]
struct Seen {
    events: BitSet,
    duplicates: u64,
    redelivered: u64,
    /// Highest offset read per partition.
    read_up_to: std::collections::HashMap<i32, i64>,
    latency: Histogram<u64>,
}

#[derive(Debug)]
struct Watch {
    topic: String,
    path: &'static str,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

/// Tracks what was sent and acknowledged, and reads it back from Kafka.
#[derive(Debug)]
pub struct Matcher {
    sent: AtomicU64,
    acknowledged: Mutex<BitSet>,
    watches: Mutex<Vec<Watch>>,
    missing_topics: Vec<(String, &'static str)>,
    stop: Arc<AtomicBool>,
    drain: Duration,
}

impl Matcher {
    /// Starts reading from the current end of each topic, before anything is sent.
    pub async fn start(options: &E2eOptions, run: u32, clock: Clock) -> anyhow::Result<Arc<Self>> {
        let options = options.clone();
        tokio::task::spawn_blocking(move || Self::start_blocking(&options, run, clock)).await?
    }

    fn start_blocking(options: &E2eOptions, run: u32, clock: Clock) -> anyhow::Result<Arc<Self>> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut watches = Vec::new();
        let mut missing_topics = Vec::new();
        let topics = std::iter::once((options.raw_topic.clone(), "HTTP→Kafka", true))
            .chain(options.enriched_topic.clone().map(|t| (t, "HTTP→enriched", false)));
        for (topic, path, required) in topics {
            match assign_at_end(&options.kafka, &topic, run)? {
                Some(consumer) => {
                    let seen = Arc::new(Mutex::new(Seen {
                        events: BitSet::default(),
                        duplicates: 0,
                        redelivered: 0,
                        read_up_to: std::collections::HashMap::new(),
                        latency: phase_histogram(),
                    }));
                    let thread = spawn_reader(consumer, run, clock, seen.clone(), stop.clone());
                    watches.push(Watch { topic, path, seen, thread: Some(thread) });
                }
                None if required => {
                    anyhow::bail!("topic {topic} does not exist; create it with `clickstream topics apply`")
                }
                None => missing_topics.push((topic, path)),
            }
        }
        Ok(Arc::new(Self {
            sent: AtomicU64::new(0),
            acknowledged: Mutex::new(BitSet::default()),
            watches: Mutex::new(watches),
            missing_topics,
            stop,
            drain: options.drain,
        }))
    }

    /// `count` events from `first_seq` on were sent.
    pub fn sent(&self, count: u64) {
        self.sent.fetch_add(count, Ordering::Relaxed);
    }

    /// The events of a request that got a 2xx.
    pub fn acknowledge(&self, first_seq: u64, count: u64) {
        if let Ok(mut acknowledged) = self.acknowledged.lock() {
            acknowledged.insert_range(first_seq, count);
        }
    }

    /// Waits until every acknowledged event is seen, or nothing new arrives for the drain
    /// time, then stops reading and reports.
    pub async fn finish(&self) -> E2eResult {
        let mut last_total = u64::MAX;
        let mut last_change = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let acknowledged = self.acknowledged.lock().map(|a| a.clone()).unwrap_or_default();
            let counts: Vec<u64> = self.each_seen(|seen| seen.events.intersection_len(&acknowledged));
            let total: u64 = counts.iter().sum();
            if counts.iter().all(|&c| c == acknowledged.len()) {
                break;
            }
            if total != last_total {
                last_total = total;
                last_change = Instant::now();
            } else if last_change.elapsed() > self.drain {
                break;
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut watches = self.watches.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default();
        for watch in &mut watches {
            if let Some(thread) = watch.thread.take() {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
        let acknowledged = self.acknowledged.lock().map(|a| a.clone()).unwrap_or_default();
        let mut topics: Vec<TopicMatch> = watches
            .iter()
            .filter_map(|watch| {
                let seen = watch.seen.lock().ok()?;
                let seen_acknowledged = seen.events.intersection_len(&acknowledged);
                Some(TopicMatch {
                    topic: watch.topic.clone(),
                    path: watch.path.to_owned(),
                    present: true,
                    seen: seen_acknowledged,
                    lost: acknowledged.len() - seen_acknowledged,
                    seen_unacknowledged: seen.events.len() - seen_acknowledged,
                    duplicates: seen.duplicates,
                    redelivered: seen.redelivered,
                    latency: Percentiles::of(&seen.latency),
                })
            })
            .collect();
        topics.extend(self.missing_topics.iter().map(|(topic, path)| TopicMatch {
            topic: topic.clone(),
            path: (*path).to_owned(),
            present: false,
            seen: 0,
            lost: 0,
            seen_unacknowledged: 0,
            duplicates: 0,
            redelivered: 0,
            latency: Percentiles::default(),
        }));
        E2eResult { sent_events: self.sent.load(Ordering::Relaxed), acknowledged_events: acknowledged.len(), topics }
    }

    fn each_seen(&self, f: impl Fn(&Seen) -> u64) -> Vec<u64> {
        let Ok(watches) = self.watches.lock() else { return Vec::new() };
        watches.iter().filter_map(|w| w.seen.lock().ok().map(|s| f(&s))).collect()
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A consumer assigned to every partition of `topic` at its current end; `None` when the
/// topic does not exist.
fn assign_at_end(kafka: &KafkaConfig, topic: &str, run: u32) -> anyhow::Result<Option<BaseConsumer>> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = kafka
        .client_config(&[
            ("group.id", format!("clickstream-loadtest-{run:08x}")),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
            // Fetches answer as soon as data arrives; a short wait keeps the measured latency
            // close to when the event became readable.
            ("fetch.wait.max.ms", "10".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
        ])
        .create()
        .context("creating the end-to-end consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("reading metadata of {topic} from {}", kafka.bootstrap_servers))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none()) else {
        return Ok(None);
    };
    if found.partitions().is_empty() {
        return Ok(None);
    }
    let mut assignment = TopicPartitionList::new();
    for partition in found.partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition.id(), timeout)
            .with_context(|| format!("reading the end offset of {topic}/{}", partition.id()))?;
        assignment.add_partition_offset(topic, partition.id(), Offset::Offset(high))?;
    }
    consumer.assign(&assignment)?;
    Ok(Some(consumer))
}

fn spawn_reader(
    consumer: BaseConsumer,
    run: u32,
    clock: Clock,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(result) = consumer.poll(Duration::from_millis(50)) else { continue };
            let arrived = std::time::Instant::now();
            let message = match result {
                Ok(message) => message,
                Err(error) => {
                    tracing::debug!(%error, "end-to-end consumer error");
                    continue;
                }
            };
            let Some(tag) = message.payload().and_then(MessageTag::find_in).filter(|t| t.run == run) else {
                continue;
            };
            if let Ok(mut seen) = seen.lock() {
                let read_up_to = seen.read_up_to.entry(message.partition()).or_insert(-1);
                if message.offset() <= *read_up_to {
                    seen.redelivered += 1;
                    continue;
                }
                *read_up_to = message.offset();
                if seen.events.insert(tag.seq) {
                    seen.duplicates += 1;
                } else {
                    record(&mut seen.latency, arrived.saturating_duration_since(clock.instant(tag.intended_us)));
                }
            }
        }
    })
}
