//! Streaming: each pgoutput change from the slot becomes Debezium records in WAL order;
//! relation messages rebuild a table's schema (a new column shows up in the next record);
//! each commit queues its end LSN to be confirmed once Kafka has everything before it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_walstream::{CancellationToken, ChangeEvent, EventType, LogicalReplicationStream, ReplicaIdentity, RowData};
use tokio_postgres::Client;

use crate::columns::Column;
use crate::config::CdcSettings;
use crate::envelope::{Op, RowText, Source, Table, Writer};
use crate::error::CdcError;
use crate::metrics::CdcMetrics;
use crate::setup::{self, TableName};
use crate::sink::Sink;

/// The transaction being received.
#[derive(Debug, Clone, Copy)]
struct Transaction {
    xid: u32,
    commit_ms: i64,
}

/// Turns replication events into records.
pub struct Streamer<'a> {
    pub tables: HashMap<String, Arc<Table>>,
    pub writer: &'a Writer,
    pub settings: &'a CdcSettings,
    pub sink: &'a Sink,
    pub control: &'a Client,
    pub metrics: &'a Arc<CdcMetrics>,
    transaction: Option<Transaction>,
    last_commit_lsn: Option<u64>,
    /// Whether the transaction being received sent any record: a heartbeat's does not, and
    /// does not count for the lag.
    sent_in_transaction: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Streamer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamer").field("tables", &self.tables.keys()).finish_non_exhaustive()
    }
}

fn row_text(row: &RowData) -> RowText<'_> {
    row.iter().map(|(name, value)| (&**name, value.as_str())).collect()
}

impl<'a> Streamer<'a> {
    pub fn new(
        tables: HashMap<String, Arc<Table>>,
        writer: &'a Writer,
        settings: &'a CdcSettings,
        sink: &'a Sink,
        control: &'a Client,
        metrics: &'a Arc<CdcMetrics>,
    ) -> Self {
        Self {
            tables,
            writer,
            settings,
            sink,
            control,
            metrics,
            transaction: None,
            last_commit_lsn: None,
            sent_in_transaction: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Reads events until `stop` is cancelled or the stream fails.
    pub async fn run(
        &mut self,
        stream: &mut LogicalReplicationStream,
        stop: &CancellationToken,
    ) -> Result<(), CdcError> {
        self.metrics.streaming.store(1, Ordering::Relaxed);
        let interval = Duration::from_millis(self.settings.status_interval_ms.max(1));
        let mut last_status = Instant::now();
        loop {
            match stream.next_event(stop).await {
                Ok(event) => self.handle(event).await?,
                Err(_) if stop.is_cancelled() => return Ok(()),
                Err(error) => return Err(CdcError::Replication(error.to_string())),
            }
            // pg_walstream reports only when the confirmed position moved; inside one large
            // transaction it does not, and the server would end the connection after
            // `wal_sender_timeout` without a reply.
            if last_status.elapsed() >= interval {
                last_status = Instant::now();
                if let Err(error) = stream.send_feedback().await {
                    tracing::warn!(%error, "cannot send a status update to PostgreSQL");
                }
            }
        }
    }

    fn source(&self, lsn: u64) -> Source<'static> {
        let transaction = self.transaction;
        Source {
            ts_ms: transaction.map_or_else(|| chrono::Utc::now().timestamp_millis(), |t| t.commit_ms),
            tx_id: transaction.map(|t| t.xid),
            lsn: Some(lsn),
            last_commit_lsn: self.last_commit_lsn,
            snapshot: "false",
        }
    }

    async fn handle(&mut self, event: ChangeEvent) -> Result<(), CdcError> {
        let lsn = event.lsn.value();
        match event.event_type {
            EventType::Begin { transaction_id, commit_timestamp, .. } => {
                self.transaction =
                    Some(Transaction { xid: transaction_id, commit_ms: commit_timestamp.timestamp_millis() });
            }
            EventType::Commit { commit_lsn, end_lsn, commit_timestamp } => {
                self.metrics.transactions.fetch_add(1, Ordering::Relaxed);
                self.last_commit_lsn = Some(commit_lsn.value());
                self.transaction = None;
                let commit_ms = if self.sent_in_transaction.swap(false, Ordering::Relaxed) {
                    commit_timestamp.timestamp_millis()
                } else {
                    0
                };
                self.sink.confirm(end_lsn.value(), commit_ms).await?;
            }
            EventType::Relation { namespace, relation_name, columns, .. } => {
                self.relation(&namespace, &relation_name, columns).await?;
            }
            EventType::Insert { schema, table, data, .. } => {
                let table = self.table(&schema, &table)?;
                let after = row_text(&data);
                self.send_change(&table, Op::Create, None, Some(&after), lsn).await?;
            }
            EventType::Update { schema, table, old_data, new_data, replica_identity, .. } => {
                let table = self.table(&schema, &table)?;
                let keys_only = !matches!(replica_identity, ReplicaIdentity::Full);
                let after = row_text(&new_data);
                let before = old_data.as_ref().map(row_text);
                let new_key = table.key(self.writer, &after);
                let old_key = before.as_ref().map(|before| table.key(self.writer, before));
                match (before, old_key) {
                    // A changed primary key: Debezium's delete of the old key, then a create.
                    (Some(before), Some(old_key)) if old_key != new_key => {
                        self.send_change(&table, Op::Delete, Some((&before, keys_only)), None, lsn).await?;
                        self.send_change(&table, Op::Create, None, Some(&after), lsn).await?;
                    }
                    (before, _) => {
                        let before = before.as_ref().map(|b| (b, keys_only));
                        self.send_change(&table, Op::Update, before, Some(&after), lsn).await?;
                    }
                }
            }
            EventType::Delete { schema, table, old_data, replica_identity, .. } => {
                let table = self.table(&schema, &table)?;
                let keys_only = !matches!(replica_identity, ReplicaIdentity::Full);
                let before = row_text(&old_data);
                self.send_change(&table, Op::Delete, Some((&before, keys_only)), None, lsn).await?;
            }
            EventType::Truncate { tables, .. } if !self.settings.skips("t") => {
                for name in tables {
                    let Some(table) = self.tables.get(&*name) else { continue };
                    let value = table.truncate(self.writer, self.source(lsn));
                    self.sink.send(&table.topic, None, Some(&value)).await?;
                    self.sent_in_transaction.store(true, Ordering::Relaxed);
                }
            }
            // Heartbeats (our logical messages) only move the position on, through their commit.
            _ => {}
        }
        Ok(())
    }

    fn table(&self, schema: &str, name: &str) -> Result<Arc<Table>, CdcError> {
        let key = format!("{schema}.{name}");
        self.tables
            .get(&key)
            .cloned()
            .ok_or_else(|| CdcError::Replication(format!("a change to {key} came before its relation message")))
    }

    async fn send_change(
        &self,
        table: &Table,
        op: Op,
        before: Option<(&RowText<'_>, bool)>,
        after: Option<&RowText<'_>>,
        lsn: u64,
    ) -> Result<(), CdcError> {
        if self.settings.skips(op.code()) {
            return Ok(());
        }
        self.sent_in_transaction.store(true, Ordering::Relaxed);
        let keyed = after.or(before.map(|(row, _)| row)).map(|row| table.key(self.writer, row));
        let value = table.value(self.writer, op, before, after, self.source(lsn));
        self.sink.send(&table.topic, keyed.as_deref(), Some(&value)).await?;
        if op == Op::Delete && self.settings.tombstones_on_delete {
            self.sink.send(&table.topic, keyed.as_deref(), None).await?;
        }
        Ok(())
    }

    /// A relation message: the table's columns as the WAL now has them. Nullability is not in
    /// the message, so it comes from the catalog.
    async fn relation(
        &mut self,
        schema: &str,
        name: &str,
        columns: Vec<pg_walstream::RelationColumn>,
    ) -> Result<(), CdcError> {
        let table_name = TableName { schema: schema.to_owned(), table: name.to_owned() };
        let catalog = setup::columns(self.control, &table_name).await.unwrap_or_default();
        let columns: Vec<Column> = columns
            .into_iter()
            .map(|column| {
                let not_null = catalog.iter().any(|c| c.name == *column.name && c.not_null);
                Column {
                    name: column.name.to_string(),
                    type_oid: column.type_id,
                    typmod: column.type_modifier,
                    key: column.is_key,
                    not_null,
                }
            })
            .collect();
        let key = table_name.dotted();
        let changed = self.tables.get(&key).is_none_or(|table| table.columns != columns);
        if changed {
            if self.tables.contains_key(&key) {
                tracing::info!(table = %key, columns = columns.len(), "table schema changed");
            }
            let topic = self.settings.topic_for(schema, name);
            self.tables.insert(key, Arc::new(Table::new(self.writer, schema, name, columns, topic)));
        }
        Ok(())
    }
}
