//! The initial snapshot: every row of the captured tables as of the slot's creation, read in
//! a `REPEATABLE READ` transaction that imports the slot's exported snapshot, so that the
//! stream that follows starts exactly where the snapshot ends. Each row becomes an `r` record.

use std::sync::atomic::Ordering;

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::envelope::{Op, RowText, Source, Table, Writer};
use crate::error::CdcError;
use crate::metrics::CdcMetrics;
use crate::setup::quote;
use crate::sink::Sink;

/// One row read, kept until the next is known so the last can say `snapshot: last`.
struct Held {
    table: usize,
    values: Vec<Option<String>>,
}

/// Where snapshot rows go.
#[derive(Debug)]
pub struct Output<'a> {
    pub tables: &'a [Table],
    pub writer: &'a Writer,
    pub sink: &'a Sink,
    pub metrics: &'a CdcMetrics,
}

/// Reads every table under `snapshot_name` and sends each row, stamped with the slot's
/// consistent LSN; returns the rows sent.
pub async fn run(
    client: &Client,
    snapshot_name: &str,
    output: Output<'_>,
    consistent_lsn: Option<u64>,
    fetch_size: u32,
) -> Result<u64, CdcError> {
    let Output { tables, writer, sink, metrics } = output;
    let snapshot_literal = snapshot_name.replace('\'', "''");
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot_literal}'"
        ))
        .await
        .map_err(CdcError::query("importing the slot's snapshot"))?;
    let started_ms = chrono::Utc::now().timestamp_millis();
    let mut sent = 0u64;
    let mut held: Option<Held> = None;
    for (index, table) in tables.iter().enumerate() {
        let columns = table.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
        let from = format!("{}.{}", quote(&table.schema), quote(&table.name));
        client
            .batch_execute(&format!("DECLARE cdc_snapshot NO SCROLL CURSOR FOR SELECT {columns} FROM {from}"))
            .await
            .map_err(CdcError::query("snapshot cursor"))?;
        loop {
            let batch = client
                .simple_query(&format!("FETCH FORWARD {fetch_size} FROM cdc_snapshot"))
                .await
                .map_err(CdcError::query("snapshot fetch"))?;
            let mut rows = 0;
            for message in batch {
                if let SimpleQueryMessage::Row(row) = message {
                    rows += 1;
                    let values = (0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect();
                    if let Some(previous) = held.replace(Held { table: index, values }) {
                        let flag = if sent == 0 { "first" } else { "true" };
                        send_row(
                            &tables[previous.table],
                            &previous.values,
                            writer,
                            sink,
                            flag,
                            started_ms,
                            consistent_lsn,
                        )
                        .await?;
                        sent += 1;
                        metrics.snapshot_rows.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if rows == 0 {
                break;
            }
        }
        client.batch_execute("CLOSE cdc_snapshot").await.map_err(CdcError::query("snapshot cursor"))?;
    }
    if let Some(last) = held {
        send_row(&tables[last.table], &last.values, writer, sink, "last", started_ms, consistent_lsn).await?;
        sent += 1;
        metrics.snapshot_rows.fetch_add(1, Ordering::Relaxed);
    }
    client.batch_execute("COMMIT").await.map_err(CdcError::query("ending the snapshot"))?;
    Ok(sent)
}

async fn send_row(
    table: &Table,
    values: &[Option<String>],
    writer: &Writer,
    sink: &Sink,
    snapshot: &str,
    ts_ms: i64,
    lsn: Option<u64>,
) -> Result<(), CdcError> {
    let text: RowText<'_> =
        table.columns.iter().zip(values).map(|(column, value)| (column.name.as_str(), value.as_deref())).collect();
    let source = Source { ts_ms, tx_id: None, lsn, last_commit_lsn: None, snapshot };
    let key = table.key(writer, &text);
    let value = table.value(writer, Op::Read, None, Some(&text), source);
    sink.send(&table.topic, Some(&key), Some(&value)).await
}
