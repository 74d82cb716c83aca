//! `clickstream products load`: publishes a CSV or JSONL catalog to the products topic, one
//! record per product keyed by its id.

use std::path::Path;
use std::time::Duration;

use clickstream_platform::kafka::{send_threaded_waiting, KafkaConfig};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{Map, Value};

/// Catalog rows as (product id, row), in file order.
pub type CatalogRows = Vec<(String, Map<String, Value>)>;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} line {line}: {reason}")]
    Row { path: String, line: usize, reason: String },
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// A `valid_from_ms` for [`publish_catalog`] that makes rows valid at any event time (a demo or
/// benchmark catalog). Not 0: librdkafka takes a zero timestamp to mean "now".
pub const VALID_SINCE_THE_EPOCH_MS: i64 = 1;

/// Reads the catalog (JSONL, or CSV with a header row when the file ends in `.csv`) and
/// produces every row to `topic`, valid from `valid_from_ms` (else now). Returns how many
/// products were published.
pub fn load_catalog(
    kafka: &KafkaConfig,
    topic: &str,
    path: &Path,
    valid_from_ms: Option<i64>,
) -> Result<usize, CatalogError> {
    publish_catalog(kafka, topic, &read_catalog(path)?, valid_from_ms)
}

/// Produces catalog rows to `topic`, keyed by id, and waits until Kafka has them all. The
/// records' timestamp is when the rows become valid for the event-time join: `valid_from_ms`,
/// or now when `None`.
pub fn publish_catalog(
    kafka: &KafkaConfig,
    topic: &str,
    rows: &[(String, Map<String, Value>)],
    valid_from_ms: Option<i64>,
) -> Result<usize, CatalogError> {
    let producer: ThreadedProducer<DefaultProducerContext> = kafka
        .client_config(&[
            ("enable.idempotence", "true".to_owned()),
            ("compression.type", "lz4".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
        ])
        .create()?;
    for (id, row) in rows {
        let payload = Value::Object(row.clone()).to_string();
        let mut record = BaseRecord::to(topic).key(id.as_str()).payload(payload.as_str());
        if let Some(valid_from_ms) = valid_from_ms {
            record = record.timestamp(valid_from_ms);
        }
        send_threaded_waiting(&producer, record)?;
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(rows.len())
}

/// Catalog rows as (id, row), in file order.
pub fn read_catalog(path: &Path) -> Result<CatalogRows, CatalogError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read { path: shown.clone(), source })?;
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    parse_catalog(&text, is_csv, &shown)
}

/// Parses catalog text; `name` only labels errors.
pub fn parse_catalog(text: &str, is_csv: bool, name: &str) -> Result<CatalogRows, CatalogError> {
    let shown = name.to_owned();
    let row_error = |line: usize, reason: String| CatalogError::Row { path: shown.clone(), line, reason };
    let rows: Vec<Map<String, Value>> = if is_csv {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| row_error(1, e.to_string()))?.clone();
        let mut rows = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|e| row_error(index + 2, e.to_string()))?;
            rows.push(headers.iter().zip(record.iter()).map(|(h, v)| (h.to_owned(), csv_value(v))).collect());
        }
        rows
    } else {
        let mut rows = Vec::new();
        for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(row)) => rows.push(row),
                Ok(_) => return Err(row_error(index + 1, "not a JSON object".to_owned())),
                Err(e) => return Err(row_error(index + 1, e.to_string())),
            }
        }
        rows
    };
    rows.into_iter()
        .enumerate()
        .map(|(index, row)| match row.get("id") {
            Some(Value::String(id)) if !id.is_empty() => Ok((id.clone(), row)),
            Some(Value::Number(n)) => Ok((n.to_string(), row)),
            _ => Err(row_error(index + 1 + usize::from(is_csv), "row has no `id`".to_owned())),
        })
        .collect()
}

/// CSV cells are text; numbers and booleans become JSON numbers and booleans so that a price
/// reads the same whichever format the catalog came in.
fn csv_value(cell: &str) -> Value {
    if let Ok(n) = cell.parse::<i64>() {
        return Value::from(n);
    }
    if let Some(n) = cell.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
        return Value::Number(n);
    }
    match cell {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(cell.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_read_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let csv_path = dir.path().join("c.csv");
        std::fs::write(&csv_path, "id,name,price,in_stock\np1,Mug,9.5,true\np2,\"Cup, large\",12,false\n")
            .expect("write");
        let jsonl_path = dir.path().join("c.jsonl");
        std::fs::write(
            &jsonl_path,
            "{\"id\":\"p1\",\"name\":\"Mug\",\"price\":9.5,\"in_stock\":true}\n\n{\"id\":\"p2\",\"name\":\"Cup, large\",\"price\":12,\"in_stock\":false}\n",
        )
        .expect("write");
        assert_eq!(read_catalog(&csv_path).expect("csv"), read_catalog(&jsonl_path).expect("jsonl"));
    }

    #[test]
    fn rows_without_id_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"id\":\"p1\"}\n{\"name\":\"x\"}\n").expect("write");
        let error = read_catalog(&path).expect_err("no id").to_string();
        assert!(error.ends_with("line 2: row has no `id`"), "{error}");
    }
}
