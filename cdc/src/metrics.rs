//! What `clickstream cdc` counts, kept in atomics on its own path and exported through the
//! platform's telemetry (Prometheus scrape and OTLP).

use std::sync::atomic::{AtomicU64, Ordering};

use clickstream_platform::telemetry::{Kept, KeptValue};

/// Counters and levels of one cdc run.
#[derive(Debug, Default)]
pub struct CdcMetrics {
    /// Records handed to the producer (changes, tombstones, truncates, snapshot rows).
    pub records_sent: AtomicU64,
    /// Records Kafka acknowledged.
    pub records_acked: AtomicU64,
    /// Rows read by the initial snapshot.
    pub snapshot_rows: AtomicU64,
    /// Transactions received from the slot.
    pub transactions: AtomicU64,
    /// Heartbeat messages written to the WAL.
    pub heartbeats: AtomicU64,
    /// The last LSN confirmed to the slot (everything before it is in Kafka).
    pub confirmed_lsn: AtomicU64,
    /// Milliseconds between a transaction's commit and Kafka acknowledging all of it, for the
    /// last confirmed transaction.
    pub lag_ms: AtomicU64,
    /// Bytes of WAL written since the slot's confirmed position (what is still to send).
    pub lag_bytes: AtomicU64,
    /// Bytes of WAL the slot holds back from recycling.
    pub slot_retained_bytes: AtomicU64,
    /// 1 once streaming.
    pub streaming: AtomicU64,
}

/// Every exported value: name, help and how to read it.
pub const EXPORTED: &[Kept<CdcMetrics>] = &[
    Kept {
        name: "cdc_records_sent",
        help: "Change records handed to the producer",
        read: KeptValue::Counter(|m| m.records_sent.load(Ordering::Relaxed)),
    },
    Kept {
        name: "cdc_records_acked",
        help: "Change records Kafka acknowledged (rate() of this is records/s)",
        read: KeptValue::Counter(|m| m.records_acked.load(Ordering::Relaxed)),
    },
    Kept {
        name: "cdc_snapshot_rows",
        help: "Rows read by the initial snapshot",
        read: KeptValue::Counter(|m| m.snapshot_rows.load(Ordering::Relaxed)),
    },
    Kept {
        name: "cdc_transactions",
        help: "Transactions received from the replication slot",
        read: KeptValue::Counter(|m| m.transactions.load(Ordering::Relaxed)),
    },
    Kept {
        name: "cdc_heartbeats",
        help: "Heartbeat messages written to the WAL to move the slot on",
        read: KeptValue::Counter(|m| m.heartbeats.load(Ordering::Relaxed)),
    },
    Kept {
        name: "cdc_lag_seconds",
        help: "Seconds from a transaction's commit to Kafka acknowledging it (last transaction)",
        read: KeptValue::Gauge(|m| m.lag_ms.load(Ordering::Relaxed) as f64 / 1_000.0),
    },
    Kept {
        name: "cdc_lag_bytes",
        help: "WAL bytes written after the slot's confirmed position",
        read: KeptValue::Gauge(|m| m.lag_bytes.load(Ordering::Relaxed) as f64),
    },
    Kept {
        name: "cdc_slot_retained_bytes",
        help: "WAL bytes the replication slot keeps from being recycled",
        read: KeptValue::Gauge(|m| m.slot_retained_bytes.load(Ordering::Relaxed) as f64),
    },
    Kept {
        name: "cdc_confirmed_lsn",
        help: "The last LSN confirmed to the slot",
        read: KeptValue::Gauge(|m| m.confirmed_lsn.load(Ordering::Relaxed) as f64),
    },
    Kept {
        name: "cdc_streaming",
        help: "1 once the snapshot is done and changes stream",
        read: KeptValue::Gauge(|m| m.streaming.load(Ordering::Relaxed) as f64),
    },
];
