//! The enricher's CPU per event without Kafka: `process` (parse, dedup, session, enrichments,
//! output bytes) over the benchmark's stored events, built beforehand, with the binary's
//! allocator. Made for `valgrind --tool=callgrind --toggle-collect='*measured*'`, which counts
//! only the measured events; the wall-clock figure it prints is for quick same-run A/Bs.
//!
//! `cargo run --release -p clickstream --example enrich_loop -- [EVENTS]`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use clickstream_enricher::config::{EnricherSettings, IpSettings};
use clickstream_enricher::enrich::Enrichers;
use clickstream_enricher::process::{process, Input, PartitionState, Processed};
use clickstream_enricher::products::{parse_catalog, ProductChange, ProductTable};
use clickstream_loadtest::enricher_bench::raw_events;
use clickstream_loadtest::payload::catalog::BUILTIN;
use clickstream_loadtest::Catalog;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Enriches every record once; returns how many came out enriched.
#[inline(never)]
fn measured(enrichers: &Enrichers, state: &mut PartitionState, records: &[Vec<u8>], first_offset: i64) -> usize {
    let mut enriched = 0;
    for (offset, payload) in (first_offset..).zip(records) {
        let input = Input {
            topic: "events.raw",
            topic_index: 0,
            partition: 0,
            offset,
            payload: Some(payload),
            timestamp_ms: Some(1_767_225_600_000),
        };
        if let Processed::Enriched { payload, .. } = black_box(process(enrichers, state, input)) {
            enriched += usize::from(!payload.is_empty());
        }
    }
    enriched
}

fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let table = ProductTable::default();
    for (id, row) in parse_catalog(BUILTIN, false, "sample catalog")? {
        table.apply(ProductChange::Upsert { id, row });
    }
    let enrichers = Enrichers::new(table, IpSettings::default()).map_err(anyhow::Error::msg)?;
    let mut state = PartitionState::new(&EnricherSettings::default());
    // The warm-up fills the user-agent cache and the session map, as a running enricher has them.
    let records: Vec<Vec<u8>> =
        raw_events(&Arc::new(Catalog::builtin()), count * 2, 1_000, 1).into_iter().map(|(_, _, json)| json).collect();
    let (warm_up, measured_records) = records.split_at(count);
    measured(&enrichers, &mut state, warm_up, 0);
    let started = Instant::now();
    let enriched = measured(&enrichers, &mut state, measured_records, count as i64);
    let elapsed = started.elapsed();
    println!(
        "{enriched} of {count} events enriched in {:.1} ms: {:.2} µs per event",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / count as f64
    );
    Ok(())
}
