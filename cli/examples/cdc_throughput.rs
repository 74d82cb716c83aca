//! Change records per second for one 50,000-row `UPDATE`: `clickstream cdc` in process, a
//! throwaway PostgreSQL cluster and Tansu (sqlite storage, as the tests run it), and the lag
//! while the records go out; then the baseline: a bare rdkafka producer sending as many records
//! of the same size, with the same producer settings, to the same broker.
//!
//! `cargo run --release -p clickstream --example cdc_throughput -- [ROWS]`

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_cdc::metrics::CdcMetrics;
use clickstream_cdc::{CancellationToken, CdcConfig};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::postgres::Postgres;
use clickstream_tests::tansu::Tansu;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message as _};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn wait_for(metrics: &CdcMetrics, count: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while metrics.records_acked.load(Ordering::Relaxed) < count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {count} records acknowledged",
            metrics.records_acked.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The last record on `topic`: the size the baseline copies.
fn last_record(bootstrap: &str, topic: &str) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", "cdc-throughput").create()?;
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, rdkafka::Offset::Offset(high - 1))?;
    consumer.assign(&assignment)?;
    loop {
        if let Some(message) = consumer.poll(Duration::from_secs(5)) {
            let message = message?;
            return Ok((message.key().unwrap_or_default().to_vec(), message.payload().unwrap_or_default().to_vec()));
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    clickstream_platform::logging::init_logging(false);
    let rows: u64 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(50_000);
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let postgres = Postgres::start();
    postgres.sql(&format!(
        "CREATE ROLE cdc LOGIN REPLICATION PASSWORD 'cdc';
         CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL,
           updated_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO products SELECT i, 'product ' || i, 10.00 FROM generate_series(1, {rows}) i;
         GRANT SELECT ON products TO cdc;
         CREATE PUBLICATION clickstream_cdc FOR TABLE products;"
    ));
    let (topic, baseline_topic) = ("cdc-throughput", "cdc-throughput-baseline");
    create_topics(&bootstrap, &[(topic, 1), (baseline_topic, 1)]).await;

    let mut config = CdcConfig::default();
    config.kafka.bootstrap_servers = bootstrap.clone();
    config.cdc.connection = postgres.connection("cdc", "cdc");
    config.cdc.topics = [("public.products".to_owned(), topic.to_owned())].into();
    config.cdc.admin.listen = String::new();
    let producer_properties = config.cdc.producer.properties();
    let metrics = Arc::new(CdcMetrics::default());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(clickstream_cdc::run(config, metrics.clone(), stop.clone()));
    if let Err(error) = wait_for(&metrics, rows, Duration::from_secs(600)).await {
        eprintln!("{}", postgres.log());
        return Err(error);
    }
    let snapshot = started.elapsed();

    // Heartbeats leave it alone: the next value is the update's commit-to-acknowledged time.
    metrics.lag_ms.store(0, Ordering::Relaxed);
    let updating = Instant::now();
    // pgoutput (protocol 1) sends a transaction once it commits, so the clock starts then.
    tokio::task::block_in_place(|| postgres.sql("UPDATE products SET price = price + 1, updated_at = now()"));
    let update_statement = updating.elapsed();
    let committed = Instant::now();
    let (mut max_lag_bytes, mut samples) = (0u64, Vec::new());
    while metrics.records_acked.load(Ordering::Relaxed) < 2 * rows {
        if running.is_finished() {
            eprintln!("{}", postgres.log());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        max_lag_bytes = max_lag_bytes.max(metrics.lag_bytes.load(Ordering::Relaxed));
        samples.push((
            committed.elapsed().as_millis(),
            metrics.records_sent.load(Ordering::Relaxed) - rows,
            metrics.records_acked.load(Ordering::Relaxed) - rows,
            metrics.lag_ms.load(Ordering::Relaxed),
        ));
        anyhow::ensure!(updating.elapsed() < Duration::from_secs(600), "the update did not stream");
    }
    let streamed = committed.elapsed();
    while metrics.lag_ms.load(Ordering::Relaxed) == 0 && committed.elapsed() < streamed + Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let commit_to_ack_ms = metrics.lag_ms.load(Ordering::Relaxed);
    stop.cancel();
    if let Err(error) = running.await? {
        let log = postgres.log();
        eprintln!("{}", &log[log.len().saturating_sub(3_000)..]);
        return Err(error.into());
    }

    let (key, value) = last_record(&bootstrap, topic)?;
    let mut baseline_config = ClientConfig::new();
    baseline_config.set("bootstrap.servers", &bootstrap);
    for (name, setting) in &producer_properties {
        baseline_config.set(*name, setting);
    }
    let producer: FutureProducer = baseline_config.create()?;
    let baseline_started = Instant::now();
    let mut deliveries = Vec::with_capacity(usize::try_from(rows)?);
    for _ in 0..rows {
        let mut record = FutureRecord::to(baseline_topic).key(&key[..]).payload(&value[..]);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((_, returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
    for delivery in deliveries {
        delivery.await?.map_err(|(error, _)| error)?;
    }
    let baseline = baseline_started.elapsed();

    let per_second = |count: u64, elapsed: Duration| count as f64 / elapsed.as_secs_f64();
    let cdc_rate = per_second(rows, streamed);
    let baseline_rate = per_second(rows, baseline);
    println!("rows {rows}, record {} bytes (key {} bytes)", value.len(), key.len());
    println!("snapshot: {:.0} records/s ({:.1} s)", per_second(rows, snapshot), snapshot.as_secs_f64());
    println!("UPDATE statement: {:.1} s", update_statement.as_secs_f64());
    println!("update streamed: {cdc_rate:.0} records/s ({:.1} s from the UPDATE's return)", streamed.as_secs_f64());
    println!(
        "lag: commit to last acknowledgement {commit_to_ack_ms} ms; most WAL behind the slot {max_lag_bytes} bytes"
    );
    println!("baseline rdkafka: {baseline_rate:.0} records/s ({:.1} s)", baseline.as_secs_f64());
    println!("cdc / baseline: {:.2}", cdc_rate / baseline_rate);
    if std::env::var_os("CDC_TIMELINE").is_some() {
        for (ms, sent, acked, lag) in samples.iter().step_by(10) {
            println!("{ms} ms: sent {sent}, acknowledged {acked}, lag {lag} ms");
        }
    }
    Ok(())
}
