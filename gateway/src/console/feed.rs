//! The console's reader: one thread with its own Kafka consumer (no group, no commits) over the
//! raw, enriched, dead-letter and product-activity topics. It keeps the recent records, rates
//! and top products, and hands live records to browsers through a bounded broadcast channel, so
//! a slow browser loses records (shown as "sampled") instead of holding anything up. It runs
//! only while someone has the console open.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clickstream_platform::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::sync::broadcast;

use super::reader::{self, Start, StartEnds};
use super::stats::{Products, Rates, MINUTES};
use super::summary::Summary;
use crate::config::GatewayConfig;

/// Records of each lane kept for a browser that opens the console.
const RECENT: usize = 200;
/// Live records buffered per browser before it counts as too slow and loses some.
const CHANNEL: usize = 4096;
/// History read for the rates at start, at most, per raw partition.
const BACKFILL_CAP: i64 = 100_000;
/// How far the reader may fall behind a partition's end before it skips ahead.
const MAX_BEHIND: i64 = 50_000;
/// Stop reading this long after the last browser left.
const IDLE_STOP: Duration = Duration::from_secs(30);
const CHECK_EVERY: Duration = Duration::from_secs(3);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Which list a record belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Raw,
    Enriched,
    Rejected,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Enriched => "enriched",
            Self::Rejected => "rejected",
        }
    }
}

/// One record as the console shows it.
#[derive(Debug)]
pub struct Item {
    pub lane: Lane,
    pub summary: Summary,
    topic: String,
    partition: i32,
    offset: i64,
    time_ms: i64,
    payload: Vec<u8>,
    json: OnceLock<String>,
}

impl Item {
    /// The record as one line of JSON: where it was, when, and its payload as `value`.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            let value = match serde_json::from_slice::<serde::de::IgnoredAny>(&self.payload) {
                // JSON as written, without a parse and re-encode; line breaks outside strings
                // are plain whitespace, and an SSE data line must hold none.
                Ok(_) => String::from_utf8_lossy(&self.payload).replace(['\n', '\r'], " "),
                Err(_) => serde_json::Value::String(String::from_utf8_lossy(&self.payload).into_owned()).to_string(),
            };
            let head = serde_json::json!({
                "lane": self.lane.as_str(), "topic": self.topic, "partition": self.partition,
                "offset": self.offset, "timeMs": self.time_ms, "source": self.summary.source,
            })
            .to_string();
            format!("{},\"value\":{value}}}", &head[..head.len() - 1])
        })
    }
}

/// What the reader has seen, for the stats and for browsers that connect.
#[derive(Debug, Default)]
pub struct View {
    pub recent: [VecDeque<Arc<Item>>; 3],
    pub rates: Rates,
    pub products: Products,
    /// Records on the raw topic the enricher's group has not committed, when it has commits.
    pub enricher_lag: Option<i64>,
    /// Records not forwarded to browsers (over `console.events_per_sec`, or skipped when the
    /// reader fell behind).
    pub sampled: u64,
    /// Why the reader is not reading, when it is not.
    pub error: Option<String>,
    /// Whether the partitions are assigned and history is being read.
    pub reading: bool,
}

/// The reader's state shared with the console's handlers.
#[derive(Debug)]
pub struct Feed {
    pub view: Mutex<View>,
    pub live: broadcast::Sender<Arc<Item>>,
    stop: AtomicBool,
    /// Browsers with a live stream open.
    pub streams: AtomicI64,
    /// When a browser last asked for anything, in ms since `born`.
    last_used_ms: AtomicI64,
    born: Instant,
}

impl Feed {
    /// Starts the reader thread.
    pub fn start(config: &GatewayConfig) -> Arc<Self> {
        let (live, _) = broadcast::channel(CHANNEL);
        let feed = Arc::new(Self {
            view: Mutex::new(View::default()),
            live,
            stop: AtomicBool::new(false),
            streams: AtomicI64::new(0),
            last_used_ms: AtomicI64::new(0),
            born: Instant::now(),
        });
        let (reader, config) = (feed.clone(), config.clone());
        let spawned = std::thread::Builder::new().name("console-feed".into()).spawn(move || reader.run(&config));
        if let Err(error) = spawned {
            feed.lock().error = Some(format!("cannot start the console's reader thread: {error}"));
        }
        feed
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the console as in use, which keeps the reader running.
    pub fn touch(&self) {
        self.last_used_ms.store(self.born.elapsed().as_millis() as i64, Ordering::Relaxed);
    }

    pub fn is_running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        let since = self.born.elapsed().as_millis() as i64 - self.last_used_ms.load(Ordering::Relaxed);
        self.streams.load(Ordering::Relaxed) <= 0 && since > IDLE_STOP.as_millis() as i64
    }

    fn run(&self, config: &GatewayConfig) {
        self.touch();
        while self.is_running() {
            match self.read(config) {
                Ok(()) => break,
                Err(error) => {
                    self.lock().error = Some(format!("reading Kafka at {}: {error}", config.kafka.bootstrap_servers));
                    std::thread::sleep(CHECK_EVERY);
                }
            }
            if self.idle() {
                break;
            }
        }
        self.stop();
        tracing::debug!("console reader stopped");
    }

    fn read(&self, config: &GatewayConfig) -> Result<(), rdkafka::error::KafkaError> {
        let consumer = reader::observer(&config.kafka)?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let console = &config.console;
        let since = Start::Since { ms: now_ms - MINUTES * 60_000, cap: BACKFILL_CAP, last: RECENT as i64 };
        let topics = [
            (config.topics.raw.as_str(), since),
            (console.enriched_topic.as_str(), Start::Last(RECENT as i64)),
            (config.topics.dlq.as_str(), Start::Last(RECENT as i64)),
            (console.aggregates_topic.as_str(), since),
        ];
        let ends = reader::assign(&consumer, &topics, TIMEOUT)?;
        {
            let mut view = self.lock();
            view.reading = true;
            view.error = None;
        }
        let lag_reader = enricher_group_reader(&config.kafka, &console.enricher_group);
        let mut pace = Pace { second: 0, sent: 0, limit: u64::from(console.events_per_sec) };
        let mut checked = Instant::now();
        while self.is_running() {
            if checked.elapsed() >= CHECK_EVERY {
                checked = Instant::now();
                if self.idle() {
                    return Ok(());
                }
                self.catch_up(&consumer);
                if let Some(group) = &lag_reader {
                    let lag = enricher_lag(group, &consumer, &config.topics.raw, &ends);
                    self.lock().enricher_lag = lag;
                }
            }
            let Some(polled) = consumer.poll(Duration::from_millis(200)) else { continue };
            let message = polled?;
            self.take(&message, config, &ends, &mut pace);
        }
        Ok(())
    }

    /// Files one record: rates and products always, the recent lists and live browsers when new.
    fn take(&self, message: &BorrowedMessage<'_>, config: &GatewayConfig, ends: &StartEnds, pace: &mut Pace) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let topic = message.topic();
        let payload = message.payload().unwrap_or_default();
        let time_ms = message.timestamp().to_millis().unwrap_or(now_ms);
        if topic == config.console.aggregates_topic {
            self.lock().products.add(payload, now_ms);
            return;
        }
        let lane = if topic == config.topics.raw {
            Lane::Raw
        } else if topic == config.console.enriched_topic {
            Lane::Enriched
        } else {
            Lane::Rejected
        };
        let source = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == clickstream_schema::HEADER_SOURCE).and_then(|h| h.value))
            .map(String::from_utf8_lossy);
        let summary = Summary::of(payload, source.as_deref());
        let end = ends.get(&(topic.to_owned(), message.partition())).copied().unwrap_or(0);
        let history = message.offset() < end;
        // The recent history goes to browsers too: one that connected before the reader got to
        // it would otherwise never see it. Older history only feeds the rates.
        let recent_history = history && message.offset() >= end - RECENT as i64;
        let mut view = self.lock();
        if lane == Lane::Raw {
            view.rates.count(time_ms, now_ms, summary.source.as_deref().unwrap_or("-"), summary.label());
        }
        let item = Arc::new(Item {
            lane,
            summary,
            topic: topic.to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            time_ms,
            payload: payload.to_vec(),
            json: OnceLock::new(),
        });
        let recent = &mut view.recent[lane as usize];
        recent.push_back(item.clone());
        if recent.len() > RECENT {
            recent.pop_front();
        }
        // Sent under the lock, so a browser that copies the recent lists and subscribes under it
        // sees each record once.
        if recent_history {
            let _ = self.live.send(item);
        } else if !history {
            if pace.allow(now_ms) {
                let _ = self.live.send(item);
            } else {
                view.sampled += 1;
            }
        }
    }

    /// Skips to the end of any partition the reader is too far behind on.
    fn catch_up(&self, consumer: &BaseConsumer) {
        let Ok(positions) = consumer.position() else { return };
        for entry in positions.elements() {
            let Offset::Offset(at) = entry.offset() else { continue };
            let Ok((_, high)) = consumer.fetch_watermarks(entry.topic(), entry.partition(), TIMEOUT) else { continue };
            if high - at > MAX_BEHIND
                && consumer.seek(entry.topic(), entry.partition(), Offset::Offset(high), TIMEOUT).is_ok()
            {
                self.lock().sampled += (high - at) as u64;
            }
        }
    }
}

/// At most `limit` live records a second go to browsers.
#[derive(Debug)]
struct Pace {
    second: i64,
    sent: u64,
    limit: u64,
}

impl Pace {
    fn allow(&mut self, now_ms: i64) -> bool {
        if now_ms / 1000 != self.second {
            (self.second, self.sent) = (now_ms / 1000, 0);
        }
        self.sent += 1;
        self.sent <= self.limit
    }
}

/// A consumer carrying the enricher's `group.id` only to read its committed offsets: it never
/// subscribes or commits, so it never joins the group.
fn enricher_group_reader(kafka: &KafkaConfig, group: &str) -> Option<BaseConsumer> {
    if group.is_empty() {
        return None;
    }
    kafka
        .client_config(&[("group.id", group.to_owned()), ("enable.auto.commit", "false".to_owned())])
        .create()
        .inspect_err(|error| tracing::debug!(%error, "cannot read the enricher's offsets"))
        .ok()
}

/// The records on `raw` past the enricher group's committed offsets; `None` before it commits.
fn enricher_lag(group: &BaseConsumer, observer: &BaseConsumer, raw: &str, ends: &StartEnds) -> Option<i64> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in ends.keys().filter(|(topic, _)| topic == raw) {
        list.add_partition(topic, *partition);
    }
    let committed = group.committed_offsets(list, TIMEOUT).ok()?;
    let mut lag = None;
    for entry in committed.elements() {
        let Offset::Offset(at) = entry.offset() else { continue };
        let (_, high) = observer.fetch_watermarks(raw, entry.partition(), TIMEOUT).ok()?;
        *lag.get_or_insert(0) += (high - at).max(0);
    }
    lag
}
