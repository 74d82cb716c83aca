//! Counters for the protection and delivery paths, rendered in Prometheus text format at
//! `/metrics`. Labels are fixed kinds, never paths or user data.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::spool::SpoolStats;

#[derive(Debug, Default)]
pub struct Metrics {
    pub events_accepted: AtomicU64,
    pub events_rejected: AtomicU64,
    pub rate_limited: AtomicU64,
    pub shed: AtomicU64,
    pub route_fallbacks: AtomicU64,
    pub hot_key_overflows: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Prometheus text exposition of the counters, dedup drops and spool state.
    pub fn render(&self, dedup_drops: u64, spool: Option<SpoolStats>) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        line(
            "clickstream_events_accepted_total",
            "counter",
            "Events accepted (in Kafka or spooled).",
            get(&self.events_accepted),
        );
        line("clickstream_events_rejected_total", "counter", "Events rejected as invalid.", get(&self.events_rejected));
        line("clickstream_dedup_drops_total", "counter", "Retried duplicates dropped before Kafka.", dedup_drops);
        line("clickstream_rate_limited_total", "counter", "Requests answered 429.", get(&self.rate_limited));
        line("clickstream_shed_total", "counter", "Requests shed at the in-flight cap.", get(&self.shed));
        line(
            "clickstream_route_fallbacks_total",
            "counter",
            "Events sent to the default route because their dynamic topic was not allowed or missing.",
            get(&self.route_fallbacks),
        );
        line(
            "clickstream_hot_key_overflows_total",
            "counter",
            "Events rerouted to the overflow topic because their key was hot.",
            get(&self.hot_key_overflows),
        );
        if let Some(spool) = spool {
            line("clickstream_spool_bytes", "gauge", "Bytes waiting in the spool.", spool.bytes);
            line("clickstream_spool_events", "gauge", "Events waiting in the spool.", spool.records);
            line("clickstream_spool_oldest_age_ms", "gauge", "Age of the oldest spooled event.", spool.oldest_age_ms);
        }
        out
    }
}
