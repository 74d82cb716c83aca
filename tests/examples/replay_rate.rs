//! Spool replay against the direct path, into one broker in one run (Tansu `memory://`, or
//! librdkafka's mock cluster with `mock`): the same N
//! analytics.js-sized records go (1) through the durable sink with an empty spool, as
//! concurrent requests of 100 do, (2) into a spool replayed one step at a time, and (3) into a
//! spool replayed with `spool.replay_in_flight` steps in flight. Each pass writes its own
//! topic; every topic is read back and its distinct keys counted, so a rate never hides a loss.
//!
//! `cargo run --release -p clickstream-tests --example replay_rate [EVENTS] [CONCURRENT_REQUESTS] [tansu|mock] [DEPTHS]`
//!
//! DEPTHS lists the `spool.replay_in_flight` values to replay with, comma-separated (default
//! `1,8`).
//!
//! The mock cluster keeps only about 5 MiB per partition and drops older batches silently, so
//! its topics get 32 partitions here; the read-back tells if that was not enough.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_gateway::config::AckMode;
use clickstream_gateway::record::{Record, RecordHeaders};
use clickstream_gateway::sink::{DurableSink, EventSink, KafkaSink};
use clickstream_gateway::spool::Spool;
use clickstream_gateway::GatewayConfig;
use clickstream_platform::broker::EmbeddedBroker;
use clickstream_tests::kafka::{assign_from_beginning, create_topics};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique};
use rdkafka::consumer::BaseConsumer;
use rdkafka::Message;

const REQUEST_EVENTS: usize = 100;

/// As the `clickstream` binary has it: allocation is a large part of both paths.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Held for the run; dropping it stops the broker.
#[allow(dead_code)]
enum Broker {
    Tansu(Tansu),
    Mock(EmbeddedBroker),
}

#[tokio::main]
async fn main() {
    clickstream_platform::logging::init_logging(false);
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let concurrent: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let broker = args.next();
    let depths: Vec<usize> =
        args.next().map_or_else(|| vec![1, 8], |list| list.split(',').filter_map(|d| d.trim().parse().ok()).collect());
    let mut topics: Vec<String> = ["warmup", "direct"].iter().map(|t| unique(t)).collect();
    topics.extend(depths.iter().map(|depth| unique(&format!("replay-{depth}"))));
    let (_broker, bootstrap, broker_name) = match broker.as_deref() {
        Some("mock") => {
            let mock = EmbeddedBroker::start(1).expect("mock cluster");
            for topic in &topics {
                mock.create_topic(topic, 32).expect("topic");
            }
            let bootstrap = mock.bootstrap_servers().to_owned();
            (Broker::Mock(mock), bootstrap, "the mock cluster")
        }
        _ => {
            let tansu = Tansu::start_in_memory();
            let bootstrap = tansu.bootstrap();
            let specs: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), 3)).collect();
            create_topics(&bootstrap, &specs).await;
            (Broker::Tansu(tansu), bootstrap, "tansu (memory)")
        }
    };
    let config = gateway_config(&bootstrap, &topics[1], &unique("events.dlq"));
    println!(
        "{broker_name} at {bootstrap}; {events} events of {} bytes; direct path: {concurrent} concurrent requests of {REQUEST_EVENTS}",
        payload(0, 0).len()
    );

    direct(&config, &topics[0], events / 10, concurrent).await;
    let (direct_secs, direct_cpu) = direct(&config, &topics[1], events, concurrent).await;
    let mut rows = vec![("direct (durable sink, empty spool)".to_owned(), direct_secs, direct_cpu, &topics[1])];
    for (depth, topic) in depths.iter().zip(&topics[2..]) {
        let (secs, cpu) = replay(&config, topic, events, *depth).await;
        let default = if *depth == clickstream_gateway::config::SpoolConfig::default().replay_in_flight {
            " (default)"
        } else {
            ""
        };
        rows.push((format!("replay, {depth} steps in flight{default}"), secs, cpu, topic));
    }

    println!(
        "{:<36} {:>9} {:>12} {:>9} {:>12} {:>14}",
        "path", "seconds", "events/s", "vs direct", "CPU µs/event", "distinct in Kafka"
    );
    let mut short = false;
    for (name, secs, cpu, topic) in rows {
        let (distinct, total) = count_keys(&bootstrap, topic, events);
        short |= distinct != events;
        println!(
            "{name:<36} {secs:>9.2} {:>12.0} {:>9.2} {:>12.2} {distinct:>9} of {events} ({total} records)",
            events as f64 / secs,
            direct_secs / secs,
            cpu * 1e6 / events as f64,
        );
    }
    if short {
        eprintln!("some events are missing from Kafka; the rates above do not count");
        std::process::exit(1);
    }
}

fn payload(event: usize, pass: usize) -> Vec<u8> {
    format!(
        r#"{{"type":"track","event":"Product Viewed","messageId":"ajs-{pass}-{event:012}","anonymousId":"anon-{user:08}","userId":null,"timestamp":"2026-12-06T01:00:00.000Z","originalTimestamp":"2026-12-06T01:00:00.000Z","sentAt":"2026-12-06T01:00:00.012Z","receivedAt":"2026-12-06T01:00:00.020Z","properties":{{"product_id":"sku-{product:05}","name":"Trail Running Shoe","category":"Footwear","price":129.99,"currency":"USD","quantity":1}},"context":{{"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36","locale":"en-US","library":{{"name":"analytics.js","version":"next-1.74.0"}},"page":{{"path":"/products/trail-shoe","referrer":"https://www.example.com/","title":"Trail Running Shoe","url":"https://shop.example/products/trail-shoe"}},"timezone":"Europe/Berlin"}},"integrations":{{}}}}"#,
        user = event % 50_000,
        product = event % 2_000,
    )
    .into_bytes()
}

fn records(topic: &str, events: usize) -> Vec<Record> {
    let source: Arc<str> = Arc::from("web");
    (0..events)
        .map(|n| Record {
            topic: topic.to_owned(),
            key: Some(format!("{n:012}")),
            partition: None,
            payload: payload(n, 0),
            headers: RecordHeaders::new(source.clone(), None, clickstream_gateway::protocols::Protocol::Segment),
        })
        .collect()
}

/// A durable sink over a fresh spool directory; its replayer starts at once.
async fn durable(config: &GatewayConfig, topic: &str, in_flight: usize) -> (Arc<DurableSink>, Arc<Spool>) {
    let mut config = config.clone();
    config.topics.raw = topic.to_owned();
    config.spool.dir = std::env::temp_dir().join(unique("replay-rate")).display().to_string();
    config.spool.replay_in_flight = in_flight;
    let spool = Spool::open(&config.spool).expect("spool");
    let kafka = Arc::new(KafkaSink::new(&config).expect("producer"));
    let deadline = Duration::from_millis(config.delivery.enqueue_deadline_ms);
    (Arc::new(DurableSink::new(kafka, spool.clone(), AckMode::Kafka, deadline)), spool)
}

/// User and system CPU seconds of this whole process so far (librdkafka's threads included).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields count from after the parenthesised command name; utime and stime are 14 and 15,
    // in ticks of 1/100 s.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |at: usize| fields.get(at).and_then(|f| f.parse::<f64>().ok()).unwrap_or_default();
    (ticks(11) + ticks(12)) / 100.0
}

/// Seconds and CPU seconds for `concurrent` requests at a time to deliver every record
/// straight to Kafka.
async fn direct(config: &GatewayConfig, topic: &str, events: usize, concurrent: usize) -> (f64, f64) {
    let (sink, spool) = durable(config, topic, 1).await;
    let chunks: Vec<Vec<Record>> = records(topic, events).chunks(REQUEST_EVENTS).map(<[Record]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let (started, cpu_before) = (Instant::now(), cpu_seconds());
    let workers: Vec<_> = (0..concurrent)
        .map(|_| {
            let (sink, queue) = (sink.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let Some(chunk) = queue.lock().expect("queue").next() else { return };
                    sink.deliver(chunk).await.expect("delivered or spooled");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let (secs, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);
    drain(&spool, "direct").await;
    (secs, cpu)
}

/// Seconds and CPU seconds for a spool of `events` records to replay with `in_flight` steps in
/// flight.
async fn replay(config: &GatewayConfig, topic: &str, events: usize, in_flight: usize) -> (f64, f64) {
    let dir = std::env::temp_dir().join(unique("replay-rate"));
    let mut filled = config.spool.clone();
    filled.dir = dir.display().to_string();
    // No group commit runs while filling, so each append syncs itself.
    filled.fsync = clickstream_gateway::config::FsyncPolicy::Request;
    let spool = Spool::open(&filled).expect("spool");
    for chunk in records(topic, events).chunks(1_000) {
        spool.append(chunk.to_vec()).await.expect("fill the spool");
    }
    drop(spool);
    let mut config = config.clone();
    config.spool.dir = dir.display().to_string();
    config.spool.replay_in_flight = in_flight;
    // The producer connects before the clock starts, as a running gateway's has.
    let kafka = Arc::new(KafkaSink::new(&config).expect("producer"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spool = Spool::open(&config.spool).expect("spool");
    let (started, cpu_before) = (Instant::now(), cpu_seconds());
    let deadline = Duration::from_millis(config.delivery.enqueue_deadline_ms);
    let _sink = DurableSink::new(kafka, spool.clone(), AckMode::Kafka, deadline);
    while !spool.is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (secs, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);
    let _ = std::fs::remove_dir_all(&dir);
    (secs, cpu)
}

async fn drain(spool: &Arc<Spool>, pass: &str) {
    let spooled = spool.stats().records;
    if spooled > 0 {
        println!("{pass}: {spooled} records missed the enqueue deadline and were spooled; waiting for replay");
        while !spool.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Distinct keys and records on `topic`, reading until `expected` distinct keys or 60 s.
fn count_keys(bootstrap: &str, topic: &str, expected: usize) -> (usize, usize) {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("replay-rate"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    assign_from_beginning(&consumer, topic);
    let (mut keys, mut total) = (HashSet::with_capacity(expected), 0);
    let give_up = Instant::now() + Duration::from_secs(60);
    while keys.len() < expected && Instant::now() < give_up {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            total += 1;
            keys.insert(message.key().unwrap_or_default().to_vec());
        }
    }
    (keys.len(), total)
}
