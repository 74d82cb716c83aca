//! PostgreSQL logical replication into Kafka as Debezium change events: `clickstream cdc`.
//! Checks and publication first, then the slot with its exported snapshot, the snapshot read,
//! and the stream; see docs/cdc.md.

pub mod columns;
pub mod config;
mod decimal;
pub mod envelope;
pub mod error;
pub mod metrics;
pub mod setup;
mod sink;
mod snapshot;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pg_walstream::{LogicalReplicationStream, ReplicationSlotOptions, ReplicationStreamConfig};
use tokio_postgres::Client;

pub use config::CdcConfig;
pub use error::CdcError;
pub use pg_walstream::CancellationToken;

use crate::columns::Encoding;
use crate::envelope::{Table, Writer};
use crate::metrics::CdcMetrics;
use crate::setup::TableName;
use crate::sink::Sink;

/// The prefix of the logical messages heartbeats write.
pub const HEARTBEAT_PREFIX: &str = "clickstream_cdc_heartbeat";

/// Runs until `shutdown` is cancelled (then waits for Kafka to acknowledge what was sent and
/// confirms it to the slot) or something fails.
pub async fn run(config: CdcConfig, metrics: Arc<CdcMetrics>, shutdown: CancellationToken) -> Result<(), CdcError> {
    let settings = &config.cdc;
    let names: Vec<TableName> = settings.tables.iter().map(|t| TableName::parse(t)).collect();
    let control = setup::connect(&settings.connection).await?;
    setup::prepare(&control, &names, &settings.publication, settings.create_publication).await?;
    let existing = setup::slot(&control, &settings.slot).await?;
    if let Some(slot) = existing.as_ref().filter(|slot| slot.plugin != "pgoutput") {
        return Err(CdcError::SlotPlugin { slot: settings.slot.clone(), plugin: slot.plugin.clone() });
    }
    let database: String =
        control.query_one("SELECT current_database()::text", &[]).await.map_err(CdcError::query("database"))?.get(0);
    let writer = Writer {
        prefix: settings.topic_prefix.clone(),
        database,
        schemas_enable: settings.schemas_enable,
        encoding: Encoding { decimals: settings.decimal_handling_mode, times: settings.time_precision_mode },
    };
    let mut tables = Vec::with_capacity(names.len());
    for name in &names {
        let columns = setup::columns(&control, name).await?;
        tables.push(Table::new(
            &writer,
            &name.schema,
            &name.table,
            columns,
            settings.topic_for(&name.schema, &name.table),
        ));
    }

    let stream_config = ReplicationStreamConfig::builder(&settings.slot, &settings.publication)
        .with_protocol_version(1)
        .with_messages(true)
        .with_feedback_interval(Duration::from_millis(settings.status_interval_ms))
        .with_slot_options(ReplicationSlotOptions { snapshot: Some("export".to_owned()), ..Default::default() });
    let mut stream = LogicalReplicationStream::new(&replication_connection(&settings.connection), stream_config)
        .await
        .map_err(|error| CdcError::Connect {
            connection: setup::redact(&settings.connection),
            reason: format!("replication connection: {error}"),
        })?;
    let stop = shutdown.child_token();
    let sink =
        Sink::new(&config.kafka, settings, Some(stream.shared_lsn_feedback.clone()), metrics.clone(), stop.clone())?;

    if existing.is_none() {
        stream.ensure_replication_slot().await.map_err(|e| CdcError::Replication(format!("creating the slot: {e}")))?;
        tracing::info!(slot = %settings.slot, "created replication slot; snapshotting");
        if let Err(error) = initial_snapshot(&stream, &control, settings, &tables, &writer, &sink, &metrics).await {
            drop(stream);
            setup::drop_slot(&control, &settings.slot).await;
            return Err(error);
        }
    } else {
        tracing::info!(slot = %settings.slot, "resuming from the existing slot");
    }

    stream.start(None).await.map_err(|e| CdcError::Replication(format!("starting replication: {e}")))?;
    let monitoring = setup::connect(&settings.connection).await?;
    let monitor = tokio::spawn(monitor(
        monitoring,
        settings.slot.clone(),
        settings.heartbeat_interval_ms,
        metrics.clone(),
        stop.clone(),
    ));
    let tables: HashMap<String, Arc<Table>> =
        tables.into_iter().map(|table| (table.qualified_name(), Arc::new(table))).collect();
    let mut streamer = stream::Streamer::new(tables, &writer, settings, &sink, &control, &metrics);
    let streamed = streamer.run(&mut stream, &stop).await;
    stop.cancel();
    monitor.abort();
    let delivered = sink.finish().await;
    // The last confirmed position reaches the slot with this final status update.
    let _ = stream.stop().await;
    streamed.and(delivered)
}

async fn initial_snapshot(
    stream: &LogicalReplicationStream,
    control: &Client,
    settings: &config::CdcSettings,
    tables: &[Table],
    writer: &Writer,
    sink: &Sink,
    metrics: &CdcMetrics,
) -> Result<(), CdcError> {
    let name = stream
        .exported_snapshot_name()
        .ok_or_else(|| CdcError::Replication("the new slot exported no snapshot".to_owned()))?
        .to_owned();
    let consistent = setup::slot(control, &settings.slot)
        .await?
        .and_then(|slot| slot.confirmed_flush_lsn)
        .and_then(|text| parse_lsn(&text));
    let reader = setup::connect(&settings.connection).await?;
    let started = std::time::Instant::now();
    let output = snapshot::Output { tables, writer, sink, metrics };
    let rows = snapshot::run(&reader, &name, output, consistent, settings.snapshot_fetch_size).await?;
    tracing::info!(rows, seconds = started.elapsed().as_secs_f64(), "snapshot read");
    Ok(())
}

/// PostgreSQL's `X/Y` LSN text as a number.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// The same connection string, asking for a replication connection.
fn replication_connection(connection: &str) -> String {
    if connection.starts_with("postgres") {
        let separator = if connection.contains('?') { '&' } else { '?' };
        format!("{connection}{separator}replication=database")
    } else {
        format!("{connection} replication=database")
    }
}

/// Every second: the slot's lag and retained WAL; and, once `heartbeat_ms` passes without a
/// transaction, a logical message so that the slot's position moves on with the WAL.
async fn monitor(control: Client, slot: String, heartbeat_ms: u64, metrics: Arc<CdcMetrics>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_transactions = metrics.transactions.load(Ordering::Relaxed);
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let lag = control
            .query_opt(
                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8, (pg_current_wal_lsn() - restart_lsn)::int8
                   FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await;
        if let Ok(Some(row)) = lag {
            let bytes = |i: usize| row.get::<_, Option<i64>>(i).and_then(|v| u64::try_from(v).ok()).unwrap_or_default();
            metrics.lag_bytes.store(bytes(0), Ordering::Relaxed);
            metrics.slot_retained_bytes.store(bytes(1), Ordering::Relaxed);
        }
        let transactions = metrics.transactions.load(Ordering::Relaxed);
        if transactions != last_transactions {
            last_transactions = transactions;
            quiet_since = tokio::time::Instant::now();
        } else if heartbeat_ms > 0 && quiet_since.elapsed() >= Duration::from_millis(heartbeat_ms) {
            let sql = format!("SELECT pg_logical_emit_message(true, '{HEARTBEAT_PREFIX}', '')");
            match control.batch_execute(&sql).await {
                Ok(()) => {
                    metrics.heartbeats.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(error = %error::postgres_reason(&error), "heartbeat failed"),
            }
            quiet_since = tokio::time::Instant::now();
        }
    }
}
