//! What the gateway's per-request instruments cost: the OpenTelemetry calls one ingest request
//! makes, against the plain atomic counters they replaced, in the same process.
//! `cargo run --release -p clickstream-gateway --example metrics_cost`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_gateway::metrics::Metrics;
use clickstream_gateway::sink::{EventSink, NullSink};
use clickstream_platform::telemetry::Telemetry;
use http::StatusCode;

const ROUNDS: u32 = 2_000_000;

fn main() {
    let sink: Arc<dyn EventSink> = Arc::new(NullSink);
    let dedup = std::sync::Weak::new();
    let metrics = Metrics::new(Arc::new(Telemetry::local("bench")), &Arc::downgrade(&sink), dedup);
    let started = Instant::now();
    for _ in 0..ROUNDS {
        // One accepted single-event request: request counter and duration, accepted events.
        metrics.request(black_box("/v1/{type}"), StatusCode::OK, Duration::from_micros(900));
        metrics.accepted(black_box(1));
    }
    let instruments = started.elapsed();
    let (requests, accepted) = (AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    for _ in 0..ROUNDS {
        requests.fetch_add(black_box(1), Ordering::Relaxed);
        accepted.fetch_add(black_box(1), Ordering::Relaxed);
    }
    let atomics = started.elapsed();
    let per = |d: Duration| d.as_nanos() as f64 / f64::from(ROUNDS);
    println!("OpenTelemetry instruments: {:.1} ns per request", per(instruments));
    println!("atomic counters (before):  {:.1} ns per request", per(atomics));
    println!(
        "ratio: {:.1}x; at 25,000 requests/s the instruments use {:.2} % of a core",
        per(instruments) / per(atomics),
        per(instruments) * 25_000.0 / 1e7
    );
}
