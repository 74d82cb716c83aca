//! The enricher's counters and its Kafka clients' statistics, shared by the pipeline and the
//! admin endpoint.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use clickstream_platform::kafka_stats::KafkaStatsCell;
use clickstream_platform::telemetry::{Kept, KeptValue};

use crate::products::ProductTableStats;

/// Monotonic counters (and a few gauges) of what the enricher did.
#[derive(Debug, Default)]
pub struct EnricherMetrics {
    pub records_consumed: AtomicU64,
    pub events_enriched: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub dead_letters: AtomicU64,
    pub join_misses: AtomicU64,
    pub activities_aggregated: AtomicU64,
    pub activity_duplicates: AtomicU64,
    pub windows_emitted: AtomicU64,
    pub window_late_dropped: AtomicU64,
    /// Records read again after a restart to rebuild state, without output.
    pub records_replayed: AtomicU64,
    pub offset_commits: AtomicU64,
    /// Offset commits the group refused while rebalancing; the revocation commits instead.
    pub offset_commits_deferred: AtomicU64,
    pub transaction_commits: AtomicU64,
    pub transaction_aborts: AtomicU64,
    pub producers_created: AtomicU64,
    pub pipeline_restarts: AtomicU64,
    pub delivery_errors: AtomicU64,
    /// Output records handed to the producer, over every output topic.
    pub outputs_sent: AtomicU64,
    /// Output records Kafka acknowledged, over every output topic.
    pub outputs_delivered: AtomicU64,
    /// Product activities written to the repartition topic.
    pub activities_repartitioned: AtomicU64,
    /// Records written to the repartition topic, each a batch of activities of one window.
    pub repartition_records: AtomicU64,
    /// Sum over assigned input partitions of high watermark minus position, at the last check.
    pub consumer_lag: AtomicI64,
    /// 1 once the product table is bootstrapped and the consumer is running.
    pub ready: AtomicU64,
    /// The group consumer's latest librdkafka statistics (lag per partition, brokers).
    pub consumer_stats: Arc<KafkaStatsCell>,
    /// The output producer's latest librdkafka statistics.
    pub producer_stats: Arc<KafkaStatsCell>,
    /// The product table's size and changes.
    pub product_table: Arc<ProductTableStats>,
}

impl EnricherMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// (name, help, value) of every exported value, named as Prometheus shows it.
    pub fn snapshot(&self) -> Vec<(String, &'static str, f64)> {
        EXPORTED
            .iter()
            .map(|kept| {
                let name = match kept.read {
                    KeptValue::Counter(_) => format!("{}_total", kept.name),
                    KeptValue::Gauge(_) => kept.name.to_owned(),
                };
                (name, kept.help, kept.value(self))
            })
            .collect()
    }
}

/// Every value the enricher exports, by name, as /metrics shows it (counters with `_total`).
pub const EXPORTED: &[Kept<EnricherMetrics>] = &[
    Kept {
        name: "enricher_records_consumed",
        help: "Input records read",
        read: KeptValue::Counter(|m| m.records_consumed.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_events_enriched",
        help: "Events written to the enriched topic",
        read: KeptValue::Counter(|m| m.events_enriched.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_duplicates_dropped",
        help: "Events dropped as repeated messageIds",
        read: KeptValue::Counter(|m| m.duplicates_dropped.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_dead_letters",
        help: "Records written to the dead-letter topic",
        read: KeptValue::Counter(|m| m.dead_letters.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_join_misses",
        help: "Product ids not found in the product table",
        read: KeptValue::Counter(|m| m.join_misses.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_activities_aggregated",
        help: "Product activities counted in windows",
        read: KeptValue::Counter(|m| m.activities_aggregated.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_activity_duplicates",
        help: "Repartitioned activities dropped as replays",
        read: KeptValue::Counter(|m| m.activity_duplicates.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_windows_emitted",
        help: "Window rows written to the aggregates topic",
        read: KeptValue::Counter(|m| m.windows_emitted.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_window_late_dropped",
        help: "Activities too late for their window",
        read: KeptValue::Counter(|m| m.window_late_dropped.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_records_replayed",
        help: "Records re-read after a restart to rebuild state",
        read: KeptValue::Counter(|m| m.records_replayed.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_offset_commits",
        help: "Consumer offset commits outside transactions",
        read: KeptValue::Counter(|m| m.offset_commits.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_offset_commits_deferred",
        help: "Offset commits refused while the group rebalanced (the revocation commits instead)",
        read: KeptValue::Counter(|m| m.offset_commits_deferred.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_transaction_commits",
        help: "Kafka transactions committed",
        read: KeptValue::Counter(|m| m.transaction_commits.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_transaction_aborts",
        help: "Kafka transactions aborted",
        read: KeptValue::Counter(|m| m.transaction_aborts.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_producers_created",
        help: "Producers created (more than one means a restart or fencing)",
        read: KeptValue::Counter(|m| m.producers_created.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_pipeline_restarts",
        help: "Consumer and producer rebuilt after an error",
        read: KeptValue::Counter(|m| m.pipeline_restarts.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_delivery_errors",
        help: "Output records Kafka did not accept",
        read: KeptValue::Counter(|m| m.delivery_errors.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_outputs_sent",
        help: "Output records handed to the producer",
        read: KeptValue::Counter(|m| m.outputs_sent.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_outputs_delivered",
        help: "Output records Kafka acknowledged",
        read: KeptValue::Counter(|m| m.outputs_delivered.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_activities_repartitioned",
        help: "Product activities written to the repartition topic",
        read: KeptValue::Counter(|m| m.activities_repartitioned.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_repartition_records",
        help: "Records written to the repartition topic, each a batch of activities of one window",
        read: KeptValue::Counter(|m| m.repartition_records.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_consumer_lag",
        help: "Input records not yet read",
        read: KeptValue::Gauge(|m| m.consumer_lag.load(Ordering::Relaxed) as f64),
    },
    Kept {
        name: "enricher_ready",
        help: "1 when the product table is loaded and the consumer runs",
        read: KeptValue::Gauge(|m| m.ready.load(Ordering::Relaxed) as f64),
    },
    Kept {
        name: "enricher_product_table_products",
        help: "Products in the product table",
        read: KeptValue::Gauge(|m| m.product_table.products.load(Ordering::Relaxed) as f64),
    },
    Kept {
        name: "enricher_product_table_versions",
        help: "Product versions kept (current rows and history within retention)",
        read: KeptValue::Gauge(|m| m.product_table.versions.load(Ordering::Relaxed) as f64),
    },
    Kept {
        name: "enricher_product_changes",
        help: "Product changes applied to the table",
        read: KeptValue::Counter(|m| m.product_table.changes_applied.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_product_bad_records",
        help: "Product or changelog records not readable",
        read: KeptValue::Counter(|m| m.product_table.bad_changes.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_product_undecodable_columns",
        help: "Product columns kept encoded (Debezium precise decimals without their schema)",
        read: KeptValue::Counter(|m| m.product_table.undecodable_columns.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_product_versions_expired",
        help: "Product versions dropped by retention or the per-product cap",
        read: KeptValue::Counter(|m| m.product_table.versions_expired.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_product_changelog_written",
        help: "Superseded product versions written to the changelog topic",
        read: KeptValue::Counter(|m| m.product_table.changelog_written.load(Ordering::Relaxed)),
    },
    Kept {
        name: "enricher_product_changelog_restored",
        help: "Product versions read back from the changelog topic at start",
        read: KeptValue::Counter(|m| m.product_table.changelog_restored.load(Ordering::Relaxed)),
    },
];
