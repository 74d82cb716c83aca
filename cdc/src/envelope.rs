//! Debezium's change event: the key struct of the primary key, and the value envelope
//! (`before`, `after`, `source`, `op`, `ts_ms`), each with or without the JSON converter's
//! `{schema, payload}` wrapper. Schemas are built once per table version.

use serde_json::{json, Map, Value};

use crate::columns::{Column, Encoding};

/// The connector version `source.version` names.
pub const VERSION: &str = concat!("clickstream-", env!("CARGO_PKG_VERSION"));

/// A captured table as the records describe it: its columns now, its topic and its schemas.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    pub topic: String,
    key_schema: Value,
    value_schema: Value,
}

/// Where and when a change happened, for `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    /// Commit time of the transaction (snapshot: when the snapshot read the row).
    pub ts_ms: i64,
    pub tx_id: Option<u32>,
    pub lsn: Option<u64>,
    /// The commit LSN of the transaction before, for `sequence`.
    pub last_commit_lsn: Option<u64>,
    /// `true`, `first`, `last` or `false`.
    pub snapshot: &'a str,
}

/// Settings every record of a run shares.
#[derive(Debug, Clone)]
pub struct Writer {
    pub prefix: String,
    pub database: String,
    pub schemas_enable: bool,
    pub encoding: Encoding,
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Self::Read => "r",
            Self::Create => "c",
            Self::Update => "u",
            Self::Delete => "d",
        }
    }
}

/// A row's columns as text (`None` for NULL), in the table's column order or by name.
pub type RowText<'a> = Vec<(&'a str, Option<&'a str>)>;

impl Table {
    pub fn new(writer: &Writer, schema: &str, name: &str, columns: Vec<Column>, topic: String) -> Self {
        let base = format!("{}.{schema}.{name}", writer.prefix);
        let key_fields: Vec<Value> =
            columns.iter().filter(|c| c.key).map(|c| c.field_schema(writer.encoding)).collect();
        let key_schema =
            json!({"type": "struct", "fields": key_fields, "optional": false, "name": format!("{base}.Key")});
        let row_fields: Vec<Value> = columns.iter().map(|c| c.field_schema(writer.encoding)).collect();
        let row = |field: &str| json!({"type": "struct", "fields": row_fields, "optional": true, "name": format!("{base}.Value"), "field": field});
        let value_schema = json!({
            "type": "struct",
            "fields": [row("before"), row("after"), source_schema(),
                {"type": "string", "optional": false, "field": "op"},
                {"type": "int64", "optional": true, "field": "ts_ms"},
                {"type": "int64", "optional": true, "field": "ts_us"},
                {"type": "int64", "optional": true, "field": "ts_ns"},
                transaction_schema()],
            "optional": false,
            "name": format!("{base}.Envelope"),
            "version": 2
        });
        Self { schema: schema.to_owned(), name: name.to_owned(), columns, topic, key_schema, value_schema }
    }

    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The row's columns encoded; with `keys_only`, only the primary key (a delete's `before`
    /// under `REPLICA IDENTITY DEFAULT` carries nothing else).
    fn row(&self, text: &RowText<'_>, encoding: Encoding, keys_only: bool) -> Map<String, Value> {
        let mut row = Map::with_capacity(self.columns.len());
        for column in self.columns.iter().filter(|c| c.key || !keys_only) {
            let value = text.iter().find(|(name, _)| *name == column.name).and_then(|(_, value)| *value);
            row.insert(column.name.clone(), column.encode(value, encoding));
        }
        row
    }

    /// The key record: the primary key's columns as a struct.
    pub fn key(&self, writer: &Writer, text: &RowText<'_>) -> Vec<u8> {
        let payload = Value::Object(self.row(text, writer.encoding, true));
        wrap(writer.schemas_enable, &self.key_schema, payload)
    }

    /// The value record of a change. `before` is only what the replica identity gave.
    pub fn value(
        &self,
        writer: &Writer,
        op: Op,
        before: Option<(&RowText<'_>, bool)>,
        after: Option<&RowText<'_>>,
        source: Source<'_>,
    ) -> Vec<u8> {
        let before =
            before.map_or(Value::Null, |(text, keys_only)| Value::Object(self.row(text, writer.encoding, keys_only)));
        let after = after.map_or(Value::Null, |text| Value::Object(self.row(text, writer.encoding, false)));
        let now = chrono::Utc::now();
        let micros = now.timestamp_micros();
        let payload = json!({
            "before": before,
            "after": after,
            "source": self.source(writer, source),
            "op": op.code(),
            "ts_ms": micros / 1_000,
            "ts_us": micros,
            "ts_ns": micros * 1_000,
            "transaction": null,
        });
        wrap(writer.schemas_enable, &self.value_schema, payload)
    }

    /// Debezium's truncate event: no key, no rows, only `source` and `op: t`.
    pub fn truncate(&self, writer: &Writer, source: Source<'_>) -> Vec<u8> {
        let micros = chrono::Utc::now().timestamp_micros();
        let payload = json!({
            "before": null, "after": null, "source": self.source(writer, source), "op": "t",
            "ts_ms": micros / 1_000, "ts_us": micros, "ts_ns": micros * 1_000, "transaction": null,
        });
        wrap(writer.schemas_enable, &self.value_schema, payload)
    }

    fn source(&self, writer: &Writer, source: Source<'_>) -> Value {
        let text = |lsn: Option<u64>| lsn.map_or("null".to_owned(), |lsn| format!("\"{lsn}\""));
        json!({
            "version": VERSION,
            "connector": "postgresql",
            "name": writer.prefix,
            "ts_ms": source.ts_ms,
            "snapshot": source.snapshot,
            "db": writer.database,
            "sequence": format!("[{}, {}]", text(source.last_commit_lsn), text(source.lsn)),
            "ts_us": source.ts_ms * 1_000,
            "ts_ns": source.ts_ms * 1_000_000,
            "schema": self.schema,
            "table": self.name,
            "txId": source.tx_id,
            "lsn": source.lsn,
            "xmin": null,
        })
    }
}

fn wrap(schemas_enable: bool, schema: &Value, payload: Value) -> Vec<u8> {
    let record = if schemas_enable { json!({"schema": schema, "payload": payload}) } else { payload };
    serde_json::to_vec(&record).unwrap_or_default()
}

/// The schema of `source`, as Debezium 2.x's PostgreSQL connector writes it.
fn source_schema() -> Value {
    json!({
        "type": "struct",
        "fields": [
            {"type": "string", "optional": false, "field": "version"},
            {"type": "string", "optional": false, "field": "connector"},
            {"type": "string", "optional": false, "field": "name"},
            {"type": "int64", "optional": false, "field": "ts_ms"},
            {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
             "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
             "default": "false", "field": "snapshot"},
            {"type": "string", "optional": false, "field": "db"},
            {"type": "string", "optional": true, "field": "sequence"},
            {"type": "int64", "optional": true, "field": "ts_us"},
            {"type": "int64", "optional": true, "field": "ts_ns"},
            {"type": "string", "optional": false, "field": "schema"},
            {"type": "string", "optional": false, "field": "table"},
            {"type": "int64", "optional": true, "field": "txId"},
            {"type": "int64", "optional": true, "field": "lsn"},
            {"type": "int64", "optional": true, "field": "xmin"}
        ],
        "optional": false,
        "name": "io.debezium.connector.postgresql.Source",
        "field": "source"
    })
}

fn transaction_schema() -> Value {
    json!({
        "type": "struct",
        "fields": [
            {"type": "string", "optional": false, "field": "id"},
            {"type": "int64", "optional": false, "field": "total_order"},
            {"type": "int64", "optional": false, "field": "data_collection_order"}
        ],
        "optional": true, "name": "event.block", "version": 1, "field": "transaction"
    })
}
