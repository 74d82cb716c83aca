//! The enricher's counters and its Kafka clients' statistics, shared by the pipeline and the
//! admin endpoint.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use clickstream_platform::kafka_stats::KafkaStatsCell;

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

    /// (name, help, value) for every counter, for exposition.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, f64)> {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let table = &self.product_table;
        vec![
            ("enricher_records_consumed_total", "Input records read", c(&self.records_consumed)),
            ("enricher_events_enriched_total", "Events written to the enriched topic", c(&self.events_enriched)),
            ("enricher_duplicates_dropped_total", "Events dropped as repeated messageIds", c(&self.duplicates_dropped)),
            ("enricher_dead_letters_total", "Records written to the dead-letter topic", c(&self.dead_letters)),
            ("enricher_join_misses_total", "Product ids not found in the product table", c(&self.join_misses)),
            (
                "enricher_activities_aggregated_total",
                "Product activities counted in windows",
                c(&self.activities_aggregated),
            ),
            (
                "enricher_activity_duplicates_total",
                "Repartitioned activities dropped as replays",
                c(&self.activity_duplicates),
            ),
            ("enricher_windows_emitted_total", "Window rows written to the aggregates topic", c(&self.windows_emitted)),
            (
                "enricher_window_late_dropped_total",
                "Activities too late for their window",
                c(&self.window_late_dropped),
            ),
            (
                "enricher_records_replayed_total",
                "Records re-read after a restart to rebuild state",
                c(&self.records_replayed),
            ),
            ("enricher_offset_commits_total", "Consumer offset commits outside transactions", c(&self.offset_commits)),
            ("enricher_transaction_commits_total", "Kafka transactions committed", c(&self.transaction_commits)),
            ("enricher_transaction_aborts_total", "Kafka transactions aborted", c(&self.transaction_aborts)),
            (
                "enricher_producers_created_total",
                "Producers created (more than one means a restart or fencing)",
                c(&self.producers_created),
            ),
            (
                "enricher_pipeline_restarts_total",
                "Consumer and producer rebuilt after an error",
                c(&self.pipeline_restarts),
            ),
            ("enricher_delivery_errors_total", "Output records Kafka did not accept", c(&self.delivery_errors)),
            ("enricher_outputs_sent_total", "Output records handed to the producer", c(&self.outputs_sent)),
            ("enricher_outputs_delivered_total", "Output records Kafka acknowledged", c(&self.outputs_delivered)),
            (
                "enricher_activities_repartitioned_total",
                "Product activities written to the repartition topic",
                c(&self.activities_repartitioned),
            ),
            ("enricher_consumer_lag", "Input records not yet read", self.consumer_lag.load(Ordering::Relaxed) as f64),
            ("enricher_ready", "1 when the product table is loaded and the consumer runs", c(&self.ready)),
            ("enricher_product_table_products", "Products in the product table", c(&table.products)),
            (
                "enricher_product_table_versions",
                "Product versions kept (current rows and history within retention)",
                c(&table.versions),
            ),
            ("enricher_product_changes_total", "Product changes applied to the table", c(&table.changes_applied)),
            ("enricher_product_bad_records_total", "Product or changelog records not readable", c(&table.bad_changes)),
            (
                "enricher_product_undecodable_columns_total",
                "Product columns kept encoded (Debezium precise decimals without their schema)",
                c(&table.undecodable_columns),
            ),
            (
                "enricher_product_versions_expired_total",
                "Product versions dropped by retention or the per-product cap",
                c(&table.versions_expired),
            ),
            (
                "enricher_product_changelog_written_total",
                "Superseded product versions written to the changelog topic",
                c(&table.changelog_written),
            ),
            (
                "enricher_product_changelog_restored_total",
                "Product versions read back from the changelog topic at start",
                c(&table.changelog_restored),
            ),
        ]
    }
}
