//! What remembering a message id costs per event: [`RecentKeys`] against the two generations of
//! hash maps that the gateway's dedup and the enricher's window used before it, in the same
//! process, on the same random keys. Each event is a lookup and an insert, as dedup does, with
//! the clock read per event in both; the table is filled to its capacity first, so the figures
//! are those of a table in steady state.
//! `cargo run --release -p clickstream-platform --example recent_cost [capacity]`

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use clickstream_platform::recent::{RecentKeys, Stamp};

const ROUNDS: usize = 3;

/// Hash outputs, without a hasher (splitmix64).
fn key(i: u64) -> u64 {
    let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The baseline: the design `RecentKeys` replaced. Two maps of key → time; a lookup probes
/// both; when the current one holds half the capacity it becomes the previous one, and the
/// previous one is dropped.
#[derive(Default)]
struct TwoGenerations {
    current: HashMap<u64, Duration, BuildHasherDefault<PassThrough>>,
    previous: HashMap<u64, Duration, BuildHasherDefault<PassThrough>>,
    half: usize,
}

#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("keys are u64")
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl TwoGenerations {
    fn first_sighting(&mut self, key: u64, now: Duration, ttl: Duration) -> bool {
        let seen = self.current.get(&key).or_else(|| self.previous.get(&key));
        if seen.is_some_and(|&at| now.saturating_sub(at) < ttl) {
            return false;
        }
        if self.current.len() >= self.half {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, now);
        true
    }

    /// Bytes of both maps' tables: a slot of key and value plus a control byte.
    fn table_bytes(&self) -> usize {
        (self.current.capacity() + self.previous.capacity()) * 8 / 7 * (8 + 16 + 1)
    }
}

fn main() {
    let capacity: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let ttl = Duration::from_secs(600);
    let events = capacity as usize;
    println!("capacity {capacity} ids; each round: fill with {capacity} keys, then time {events} events of new keys (lookup + insert)");
    println!("| round | two generations ns/event | RecentKeys ns/event | ratio | two generations table MB | RecentKeys table MB |");
    println!("|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let offset = (round as u64 + 1) << 40;
        let started = Instant::now();
        let mut old = TwoGenerations { half: (capacity / 2) as usize, ..Default::default() };
        for i in 0..capacity {
            old.first_sighting(key(offset + i), started.elapsed(), ttl);
        }
        let clock = Instant::now();
        let mut kept = 0usize;
        for i in capacity..capacity + events as u64 {
            kept += usize::from(old.first_sighting(key(offset + i), clock.elapsed(), ttl));
        }
        let old_ns = clock.elapsed().as_nanos() as f64 / events as f64;

        let mut recent = RecentKeys::new(capacity, ttl);
        for i in 0..capacity {
            recent.insert(key(offset + i), Stamp::now());
        }
        let clock = Instant::now();
        for i in capacity..capacity + events as u64 {
            kept += usize::from(recent.first_sighting(key(offset + i), Stamp::now()));
        }
        let new_ns = clock.elapsed().as_nanos() as f64 / events as f64;
        assert_eq!(kept, 2 * events, "every key is new");
        let ratio = new_ns / old_ns;
        ratios.push(ratio);
        let mb = |bytes: usize| bytes as f64 / 1e6;
        println!(
            "| {} | {old_ns:.0} | {new_ns:.0} | {ratio:.2} | {:.1} | {:.1} |",
            round + 1,
            mb(old.table_bytes()),
            mb(recent.capacity() * 8)
        );
        drop(std::hint::black_box(old));
    }
    ratios.sort_by(f64::total_cmp);
    println!("RecentKeys / two generations, time per event (median of {ROUNDS}): {:.2}", ratios[ROUNDS / 2]);
}
