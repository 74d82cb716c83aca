//! The manual outage drill from docs/delivery-guarantees.md: Tansu with sqlite storage, the gateway on it,
//! 10 000 events posted while Tansu is stopped for 20 s and restarted, then a consumer counts
//! the distinct `messageId`s on the raw topic against the ones that got a 2xx.
//!
//! `cargo run --release -p clickstream-tests --example outage_drill [EVENTS] [OUTAGE_SECS]`

use std::time::Duration;

use clickstream_tests::drill::{account, steady_load};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};

#[tokio::main]
async fn main() {
    clickstream_platform::logging::init_logging(false);
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let outage = Duration::from_secs(args.next().and_then(|a| a.parse().ok()).unwrap_or(20));
    let load_time = outage + Duration::from_secs(15);

    let mut tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let gateway = clickstream_gateway::start(gateway_config(&tansu.bootstrap(), &raw, &dlq)).await.expect("gateway");
    let url = format!("http://{}", gateway.addr);
    println!("tansu (sqlite) at {}, gateway at {url}", tansu.bootstrap());
    println!("posting {events} events over {load_time:?}; stopping Tansu for {outage:?} after 5 s");

    let run = unique("drill");
    let load = tokio::spawn({
        let (url, run) = (format!("{url}/v1/batch"), run.clone());
        async move { steady_load(&url, WRITE_KEY, &run, events, 20, load_time).await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    tansu.stop();
    println!("[{:>5.1}s] tansu stopped", 5.0);
    tokio::time::sleep(outage).await;
    tansu.restart();
    println!("[{:>5.1}s] tansu restarted", 5.0 + outage.as_secs_f64());
    let outcome = load.await.expect("load");
    println!("load done: {} requests, endings {:?}", outcome.requests, outcome.endings);

    let client = reqwest::Client::new();
    loop {
        let body: serde_json::Value =
            client.get(format!("{url}/readyz")).send().await.expect("readyz").json().await.expect("json");
        if body["status"] == "ok" {
            break;
        }
        println!("waiting for the spool to drain: {}", body["reason"]);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let accounting = account(&tansu.bootstrap(), &raw, &run, &outcome.acked, Duration::from_secs(120)).await;
    println!("{accounting}");
    print_watermarks(&tansu.bootstrap(), &raw);
    gateway.shutdown().await;
    if !accounting.lost.is_empty() {
        eprintln!(
            "LOST {} events, first: {:?}",
            accounting.lost.len(),
            &accounting.lost[..accounting.lost.len().min(5)]
        );
        std::process::exit(1);
    }
}

/// Per-partition offsets, to tell "not in the broker" from "not read back".
fn print_watermarks(bootstrap: &str, topic: &str) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("consumer");
    for partition in 0..3 {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
            Ok((low, high)) => println!("partition {partition}: offsets {low}..{high}"),
            Err(error) => println!("partition {partition}: {error}"),
        }
    }
}
