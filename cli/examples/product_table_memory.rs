//! The product table's memory: resident bytes per product for the latest-row table (the
//! baseline) and per kept version for the event-time table, over the sample catalog's rows.
//! Measured as the growth of the process's resident set (`VmRSS`) while the table is filled,
//! one mode per run so that freed memory from one table cannot be reused by the other. The
//! figures back the memory bound in docs/enricher.md.
//!
//! `cargo run --release -p clickstream --example product_table_memory -- latest|event_time [PRODUCTS] [VERSIONS]`

use clickstream_enricher::config::{ProductJoin, ProductTableSettings};
use clickstream_enricher::products::{parse_catalog, Basis, Origin, ProductChange, ProductTable};
use clickstream_loadtest::payload::catalog::BUILTIN;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HOUR_MS: i64 = 3_600_000;

fn resident_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    let kib: u64 = line.split_whitespace().nth(1).unwrap_or_default().parse()?;
    Ok(kib * 1024)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let join = match args.next().as_deref() {
        Some("latest") => ProductJoin::Latest,
        Some("event_time") | None => ProductJoin::EventTime,
        Some(other) => anyhow::bail!("mode `{other}`: use latest or event_time"),
    };
    let products: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(20_000);
    let versions: i64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(8);
    let catalog = parse_catalog(BUILTIN, false, "sample catalog")?;
    let json_bytes: usize = catalog.iter().map(|(_, row)| Value::Object(row.clone()).to_string().len()).sum::<usize>()
        / catalog.len().max(1);
    let settings = ProductTableSettings { join, ..ProductTableSettings::default() };
    let table = ProductTable::new(&settings, std::sync::Arc::default());
    let now = chrono::Utc::now().timestamp_millis();
    let before = resident_bytes()?;
    // One change per product per day over the last `versions` days, all within the retention.
    for version in 0..versions {
        for index in 0..products {
            let (_, template) = &catalog[index % catalog.len()];
            let mut row = template.clone();
            let id = format!("p{index}");
            row.insert("id".into(), Value::String(id.clone()));
            row.insert("price".into(), Value::from(10 + version));
            let origin = Origin {
                valid_from_ms: now - (versions - version) * 24 * HOUR_MS + HOUR_MS,
                basis: Basis::RecordTs,
                partition: 0,
                offset: version * products as i64 + index as i64,
            };
            table.apply_at(ProductChange::Upsert { id, row }, origin);
        }
    }
    let grown = resident_bytes()?.saturating_sub(before);
    let kept = table.versions().max(1);
    println!(
        "{join:?}: {products} products, {kept} versions kept, rows of about {json_bytes} JSON bytes: {:.1} MB resident, {} bytes per version kept",
        grown as f64 / 1e6,
        grown / kept as u64
    );
    Ok(())
}
