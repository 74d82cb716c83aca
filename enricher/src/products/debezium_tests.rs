//! Debezium decoding against records shaped as the PostgreSQL connector writes them with its
//! default settings (fixtures in enricher/tests/fixtures/debezium-postgres).

use serde_json::{json, Value};

use super::*;
use crate::products::{parse_record, ParsedChange, ProductChange};

const POSTGRES_PRODUCTS: &str = include_str!("../../tests/fixtures/debezium-postgres/products.jsonl");

/// Each fixture record as the Kafka key and value bytes the connector produced.
fn fixture_records() -> Vec<(String, Vec<u8>, Option<Vec<u8>>)> {
    POSTGRES_PRODUCTS
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("fixture line is JSON");
            let key = serde_json::to_vec(&record["key"]).expect("key");
            let value = (!record["value"].is_null()).then(|| serde_json::to_vec(&record["value"]).expect("value"));
            (record["what"].as_str().unwrap_or_default().to_owned(), key, value)
        })
        .collect()
}

fn parsed(key: &[u8], value: Option<&[u8]>) -> ParsedChange {
    parse_record(Some(key), value).expect("the connector's record parses")
}

fn upsert_row(change: &ProductChange) -> &serde_json::Map<String, Value> {
    match change {
        ProductChange::Upsert { row, .. } => row,
        other => panic!("expected an upsert, got {other:?}"),
    }
}

#[test]
fn postgres_default_records_decode_by_their_schema() {
    let records = fixture_records();
    assert_eq!(records.len(), 5, "r, c, u, d and a tombstone");
    let changes: Vec<ParsedChange> = records.iter().map(|(_, key, value)| parsed(key, value.as_deref())).collect();

    let chair = upsert_row(&changes[0].change);
    assert_eq!(chair["id"], 2);
    assert_eq!(chair["price"], json!(1200.0), "numeric(10,2) 1200.00 from the snapshot");
    assert_eq!(chair["discount"], Value::Null);
    assert_eq!(chair["weight_kg"], json!(12.5), "variable-scale numeric");
    assert_eq!(chair["launched_on"], "2025-11-03");
    assert_eq!(chair["created_at"], "2025-11-03T08:30:00.000000Z");

    let lamp = upsert_row(&changes[1].change);
    assert_eq!(lamp["price"], json!(19.99));
    assert_eq!(serde_json::to_string(&lamp["price"]).expect("json"), "19.99", "the digits stay exact");
    assert_eq!(lamp["discount"], json!(-1.5), "two's complement negative");
    assert_eq!(lamp["weight_kg"], json!(1.25));
    assert_eq!(lamp["launched_on"], "2026-01-15");
    assert_eq!(lamp["created_at"], "2026-01-02T10:00:00.123456Z", "microseconds kept");
    assert_eq!(lamp["updated_at"], "2026-01-02T10:00:00.123456Z", "zoned timestamps pass through");
    assert_eq!(lamp["name"], "Desk lamp");
    assert_eq!(changes[1].source_ts_ms, Some(1_767_348_000_000));

    let updated = upsert_row(&changes[2].change);
    assert_eq!(updated["price"], json!(24.5));
    assert_eq!(changes[3].change, ProductChange::Delete { id: "2".into() });
    assert_eq!(changes[4].change, ProductChange::Delete { id: "2".into() }, "the tombstone's key names the row");
    assert!(changes.iter().all(|c| c.undecodable_columns == 0), "{changes:?}");
}

#[test]
fn precise_decimals_decode_exactly() {
    // Values seen in the connector's output for numeric(4,2) and numeric(5,2) columns.
    assert_eq!(decimal("AfM=", 2), Some(json!(4.99)));
    assert_eq!(decimal("CcM=", 2), Some(json!(24.99)));
    assert_eq!(decimal("AdTA", 2), Some(json!(1200.0)));
    assert_eq!(decimal("AA==", 2), Some(json!(0.0)));
    assert_eq!(decimal("/w==", 0), Some(json!(-1)));
    assert_eq!(decimal("gA==", 0), Some(json!(-128)));
    assert_eq!(decimal("AQ==", 4), Some(json!(0.0001)));
    assert_eq!(decimal("BQ==", -2), Some(json!(500)));
    assert_eq!(decimal("not base64!", 2), None);
}

#[test]
fn decimals_a_double_cannot_hold_stay_exact_text() {
    // 12345678901234567.89 as numeric(38,2): 19 significant digits.
    let unscaled: i128 = 1_234_567_890_123_456_789;
    let bytes = unscaled.to_be_bytes();
    let trimmed = &bytes[bytes.iter().position(|&b| b != 0).unwrap_or(0)..];
    let encoded = base64::engine::general_purpose::STANDARD.encode(trimmed);
    assert_eq!(decimal(&encoded, 2), Some(json!("12345678901234567.89")));
    let negative = base64::engine::general_purpose::STANDARD.encode((-unscaled).to_be_bytes());
    assert_eq!(decimal(&negative, 2), Some(json!("-12345678901234567.89")));
}

#[test]
fn time_types_follow_their_units() {
    let schema = |name: &str| json!({"type": "int64", "optional": true, "name": name, "field": "t"});
    let decode = |name: &str, value: Value| {
        let mut row = json!({"t": value}).as_object().cloned().unwrap_or_default();
        let undecodable = decode_row(&mut row, &[schema(name)]);
        (row["t"].clone(), undecodable)
    };
    assert_eq!(decode("io.debezium.time.Date", json!(-1)), (json!("1969-12-31"), 0));
    assert_eq!(
        decode("io.debezium.time.Timestamp", json!(1_767_348_000_123_i64)),
        (json!("2026-01-02T10:00:00.123Z"), 0)
    );
    assert_eq!(
        decode("io.debezium.time.NanoTimestamp", json!(1_500_000_000)),
        (json!("1970-01-01T00:00:01.500000000Z"), 0)
    );
    assert_eq!(decode("io.debezium.time.MicroTime", json!(36_000_000_001_i64)), (json!("10:00:00.000001"), 0));
    assert_eq!(
        decode("io.debezium.time.ZonedTimestamp", json!("2026-01-02T10:00:00Z")),
        (json!("2026-01-02T10:00:00Z"), 0)
    );
    assert_eq!(decode("io.debezium.time.Date", json!("soon")), (json!("soon"), 1), "kept and counted");
}

#[test]
fn string_and_double_modes_pass_through() {
    let fields = [
        json!({"type": "string", "optional": false, "field": "price"}),
        json!({"type": "double", "optional": true, "field": "weight"}),
    ];
    let mut row = json!({"price": "19.99", "weight": 1.25}).as_object().cloned().unwrap_or_default();
    assert_eq!(decode_row(&mut row, &fields), 0);
    assert_eq!(Value::Object(row), json!({"price": "19.99", "weight": 1.25}));
}

#[test]
fn without_the_schema_encoded_decimals_are_counted_not_guessed() {
    let bare = br#"{"before":null,"after":{"id":1,"name":"Lamp","price":"B88=","weight":{"scale":3,"value":"BOI="}},"op":"c","source":{"ts_ms":1}}"#;
    let change = parse_record(None, Some(bare)).expect("c");
    assert_eq!(change.undecodable_columns, 2);
    assert_eq!(upsert_row(&change.change)["price"], "B88=", "kept as it came");
    let string_mode = br#"{"before":null,"after":{"id":1,"name":"Lamp","price":"19.99"},"op":"c"}"#;
    assert_eq!(parse_record(None, Some(string_mode)).expect("c").undecodable_columns, 0);
}

#[test]
fn a_flat_row_with_its_schema_decodes_too() {
    // Debezium's ExtractNewRecordState transform leaves the row itself under the wrapper.
    let record = br#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"price"}],"optional":false,"name":"dbserver1.inventory.products.Value"},"payload":{"id":1,"price":"B88="}}"#;
    let change = parse_record(None, Some(record)).expect("flat");
    assert_eq!(upsert_row(&change.change)["price"], json!(19.99));
}
