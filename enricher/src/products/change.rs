//! Reading one record of the products topic as a change to the table: plain JSON upserts with
//! null tombstones, or Debezium change events with or without the schema wrapper, their
//! columns decoded by that schema when it is there.

use serde_json::{Map, Value};

use super::debezium;

/// What one record of the products topic does to the table.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductChange {
    /// Insert or replace the row for `id`.
    Upsert { id: String, row: Map<String, Value> },
    /// Remove the row for `id`.
    Delete { id: String },
    /// Debezium's truncate: remove every row.
    Truncate,
    /// A record that changes nothing, such as a Debezium heartbeat.
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("product record is not JSON: {0}")]
    NotJson(String),
    #[error("product record is a JSON {0}, not an object")]
    NotAnObject(&'static str),
    #[error("product record has no id: neither the key nor an `id` field names one")]
    MissingId,
    #[error("Debezium change event has unknown op `{0}`")]
    UnknownOp(String),
}

/// A change and, for a Debezium event, when the database made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedChange {
    pub change: ProductChange,
    /// Debezium's `source.ts_ms`: the commit time in the source database.
    pub source_ts_ms: Option<i64>,
    /// Columns kept as they came because they hold an encoding (a precise decimal) that could
    /// not be decoded: a bad value under a schema, or a record without the schema wrapper.
    pub undecodable_columns: u32,
}

/// Interprets one record. `key` and `value` are the raw Kafka key and value.
pub fn parse_change(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ProductChange, ChangeError> {
    parse_record(key, value).map(|parsed| parsed.change)
}

/// As [`parse_change`], with the source database's commit time when the record carries one.
pub fn parse_record(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ParsedChange, ChangeError> {
    let untimed = |change| ParsedChange { change, source_ts_ms: None, undecodable_columns: 0 };
    let key_id = key.and_then(id_from_key);
    let Some(bytes) = value.filter(|v| !v.is_empty()) else {
        return key_id.map(|id| untimed(ProductChange::Delete { id })).ok_or(ChangeError::MissingId);
    };
    let parsed: Value = serde_json::from_slice(bytes).map_err(|e| ChangeError::NotJson(e.to_string()))?;
    let (schema, body) = split_schema(parsed);
    match body {
        Value::Null => key_id.map(|id| untimed(ProductChange::Delete { id })).ok_or(ChangeError::MissingId),
        Value::Object(map) if is_debezium(&map) => {
            let source_ts_ms = map.get("source").and_then(|s| s.get("ts_ms")).and_then(Value::as_i64);
            let columns = schema.as_ref().and_then(|schema| debezium::struct_fields(schema, "after"));
            let mut undecodable_columns = 0;
            let change = debezium_change(map, key_id, |row| undecodable_columns = decode_columns(row, columns))?;
            Ok(ParsedChange { change, source_ts_ms, undecodable_columns })
        }
        Value::Object(mut row) => {
            let columns = schema.as_ref().and_then(debezium::row_fields);
            let undecodable_columns = decode_columns(&mut row, columns);
            let id = row.get("id").and_then(id_text).or(key_id).ok_or(ChangeError::MissingId)?;
            Ok(ParsedChange { change: ProductChange::Upsert { id, row }, source_ts_ms: None, undecodable_columns })
        }
        other => Err(ChangeError::NotAnObject(type_name(&other))),
    }
}

/// Decodes the row by its column schemas; without them, counts the columns that look encoded.
fn decode_columns(row: &mut Map<String, Value>, columns: Option<&[Value]>) -> u32 {
    match columns {
        Some(columns) => debezium::decode_row(row, columns),
        None => debezium::undecodable_without_schema(row),
    }
}

/// Kafka Connect's JSON converter with `schemas.enable=true` (Debezium's default) wraps each
/// record as `{schema, payload}`; the schema is what tells a decimal's bytes from text.
fn split_schema(value: Value) -> (Option<Value>, Value) {
    match value {
        Value::Object(mut map) if map.contains_key("schema") && map.contains_key("payload") && map.len() == 2 => {
            let payload = map.remove("payload").unwrap_or(Value::Null);
            (map.remove("schema").filter(Value::is_object), payload)
        }
        other => (None, other),
    }
}

/// The payload alone, for keys.
fn unwrap_schema(value: Value) -> Value {
    split_schema(value).1
}

fn is_debezium(map: &Map<String, Value>) -> bool {
    map.get("op").is_some_and(Value::is_string) && (map.contains_key("after") || map.contains_key("before"))
}

fn debezium_change(
    mut map: Map<String, Value>,
    key_id: Option<String>,
    decode: impl FnOnce(&mut Map<String, Value>),
) -> Result<ProductChange, ChangeError> {
    let op = map.get("op").and_then(Value::as_str).unwrap_or_default().to_owned();
    match op.as_str() {
        // c = create, r = snapshot read, u = update.
        "c" | "r" | "u" => match map.remove("after") {
            Some(Value::Object(mut row)) => {
                decode(&mut row);
                let id = row.get("id").and_then(id_text).or(key_id).ok_or(ChangeError::MissingId)?;
                Ok(ProductChange::Upsert { id, row })
            }
            _ => Err(ChangeError::NotAnObject("null")),
        },
        "d" => {
            let before_id = map.get("before").and_then(|b| b.get("id")).and_then(id_text);
            before_id.or(key_id).map(|id| ProductChange::Delete { id }).ok_or(ChangeError::MissingId)
        }
        "t" => Ok(ProductChange::Truncate),
        "m" => Ok(ProductChange::Ignore),
        _ => Err(ChangeError::UnknownOp(op)),
    }
}

/// A key is the bare id, a JSON string, or a Debezium key struct (`{"id": …}`, maybe wrapped).
fn id_from_key(key: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(key) {
        Ok(value) => match unwrap_schema(value) {
            Value::Object(map) => map.get("id").and_then(id_text),
            other => id_text(&other),
        },
        Err(_) => std::str::from_utf8(key).ok().filter(|s| !s.is_empty()).map(str::to_owned),
    }
}

/// Ids may be strings or numbers (a PostgreSQL serial key arrives as a number).
pub(crate) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert_id(change: &ProductChange) -> &str {
        match change {
            ProductChange::Upsert { id, .. } => id,
            other => panic!("expected an upsert, got {other:?}"),
        }
    }

    #[test]
    fn plain_upsert_takes_the_id_from_the_row_or_the_key() {
        let change = parse_change(Some(b"p1"), Some(br#"{"id":"p1","name":"Mug","price":9.5}"#)).expect("change");
        assert_eq!(upsert_id(&change), "p1");
        let keyed = parse_change(Some(b"p2"), Some(br#"{"name":"Cup"}"#)).expect("change");
        assert_eq!(upsert_id(&keyed), "p2");
    }

    #[test]
    fn null_value_is_a_tombstone() {
        assert_eq!(parse_change(Some(b"p1"), None), Ok(ProductChange::Delete { id: "p1".into() }));
        assert_eq!(parse_change(Some(br#""p1""#), Some(b"null")), Ok(ProductChange::Delete { id: "p1".into() }));
        assert_eq!(parse_change(None, None), Err(ChangeError::MissingId));
    }

    #[test]
    fn debezium_envelope_with_and_without_schema() {
        let bare = br#"{"before":null,"after":{"id":7,"name":"Lamp","price":"19.99"},"op":"c","ts_ms":1}"#;
        assert_eq!(upsert_id(&parse_change(Some(br#"{"id":7}"#), Some(bare)).expect("c")), "7");
        let wrapped =
            br#"{"schema":{"type":"struct"},"payload":{"before":{"id":7},"after":{"id":7,"name":"Lamp 2"},"op":"u"}}"#;
        match parse_change(None, Some(wrapped)).expect("u") {
            ProductChange::Upsert { row, .. } => assert_eq!(row["name"], "Lamp 2"),
            other => panic!("{other:?}"),
        }
        let delete = br#"{"schema":{},"payload":{"before":{"id":7,"name":"Lamp 2"},"after":null,"op":"d"}}"#;
        assert_eq!(parse_change(None, Some(delete)), Ok(ProductChange::Delete { id: "7".into() }));
        let key = br#"{"schema":{},"payload":{"id":7}}"#;
        assert_eq!(parse_change(Some(key), None), Ok(ProductChange::Delete { id: "7".into() }));
        assert_eq!(parse_change(None, Some(br#"{"op":"t","before":null,"after":null}"#)), Ok(ProductChange::Truncate));
    }

    #[test]
    fn debezium_source_ts_is_the_change_time() {
        let update =
            br#"{"before":null,"after":{"id":7,"price":"5"},"op":"u","ts_ms":9,"source":{"ts_ms":1767261600000}}"#;
        assert_eq!(parse_record(None, Some(update)).expect("u").source_ts_ms, Some(1_767_261_600_000));
        let no_source = br#"{"before":null,"after":{"id":7},"op":"c","ts_ms":9}"#;
        assert_eq!(parse_record(None, Some(no_source)).expect("c").source_ts_ms, None);
        assert_eq!(parse_record(Some(b"p1"), Some(br#"{"id":"p1"}"#)).expect("plain").source_ts_ms, None);
    }

    #[test]
    fn bad_records_name_the_problem() {
        assert!(matches!(parse_change(Some(b"p"), Some(b"{oops")), Err(ChangeError::NotJson(_))));
        assert_eq!(parse_change(Some(b"p"), Some(b"[1]")), Err(ChangeError::NotAnObject("array")));
        assert_eq!(parse_change(None, Some(br#"{"name":"x"}"#)), Err(ChangeError::MissingId));
        let weird = br#"{"op":"x","after":{"id":1}}"#;
        assert_eq!(parse_change(None, Some(weird)), Err(ChangeError::UnknownOp("x".into())));
    }
}
