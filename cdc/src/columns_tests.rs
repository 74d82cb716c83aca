//! Column encodings checked against the Debezium output in
//! enricher/tests/fixtures/debezium-postgres (PostgreSQL 16, Debezium 2.7, default modes).

use super::*;

const ADAPTIVE: Encoding = Encoding { decimals: DecimalHandling::Precise, times: TimePrecision::Adaptive };

fn column(name: &str, type_oid: u32, typmod: i32) -> Column {
    Column { name: name.into(), type_oid, typmod, key: false, not_null: false }
}

fn numeric(precision: i32, scale: i32) -> i32 {
    ((precision << 16) | scale) + 4
}

#[test]
fn values_match_the_fixture() {
    let price = column("price", oid::NUMERIC, numeric(10, 2));
    assert_eq!(price.encode(Some("24.50"), ADAPTIVE), json!("CZI="));
    let weight = column("weight_kg", oid::NUMERIC, -1);
    assert_eq!(weight.encode(Some("1.250"), ADAPTIVE), json!({"scale": 3, "value": "BOI="}));
    let launched = column("launched_on", oid::DATE, -1);
    assert_eq!(launched.encode(Some("2026-01-15"), ADAPTIVE), json!(20468));
    let created = column("created_at", oid::TIMESTAMP, -1);
    assert_eq!(created.encode(Some("2026-01-02 10:00:00.123456"), ADAPTIVE), json!(1_767_348_000_123_456_i64));
    let updated = column("updated_at", oid::TIMESTAMPTZ, -1);
    assert_eq!(updated.encode(Some("2026-02-01 10:15:00.5+01"), ADAPTIVE), json!("2026-02-01T09:15:00.5Z"));
    assert_eq!(updated.encode(Some("2025-11-03 08:30:00+00"), ADAPTIVE), json!("2025-11-03T08:30:00Z"));
    assert_eq!(updated.encode(None, ADAPTIVE), Value::Null);
}

#[test]
fn schemas_match_the_fixture() {
    let mut price = column("price", oid::NUMERIC, numeric(10, 2));
    price.not_null = true;
    assert_eq!(
        price.field_schema(ADAPTIVE),
        json!({"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,
               "parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"price"})
    );
    assert_eq!(
        column("weight_kg", oid::NUMERIC, -1).field_schema(ADAPTIVE),
        json!({"type":"struct","fields":[{"type":"int32","optional":false,"field":"scale"},
               {"type":"bytes","optional":false,"field":"value"}],"optional":true,
               "name":"io.debezium.data.VariableScaleDecimal","version":1,"doc":"Variable scaled decimal",
               "field":"weight_kg"})
    );
    assert_eq!(
        column("created_at", oid::TIMESTAMP, -1).field_schema(ADAPTIVE)["name"],
        "io.debezium.time.MicroTimestamp"
    );
}

#[test]
fn other_modes() {
    let price = column("price", oid::NUMERIC, numeric(10, 2));
    let double = Encoding { decimals: DecimalHandling::Double, times: TimePrecision::Connect };
    assert_eq!(price.encode(Some("19.99"), double), json!(19.99));
    assert_eq!(price.field_schema(double)["type"], "double");
    let string = Encoding { decimals: DecimalHandling::String, ..double };
    assert_eq!(price.encode(Some("19.99"), string), json!("19.99"));
    let created = column("created_at", oid::TIMESTAMP, -1);
    assert_eq!(created.encode(Some("2026-01-02 10:00:00.123456"), double), json!(1_767_348_000_123_i64));
    assert_eq!(created.field_schema(double)["name"], "org.apache.kafka.connect.data.Timestamp");
    let millis = column("at", oid::TIMESTAMP, 3);
    assert_eq!(millis.field_schema(ADAPTIVE)["name"], "io.debezium.time.Timestamp");
    let time = column("opens", oid::TIME, -1);
    assert_eq!(time.encode(Some("09:30:00.25"), ADAPTIVE), json!(34_200_250_000_i64));
    let bytes = column("blob", oid::BYTEA, -1);
    assert_eq!(bytes.encode(Some("\\x0102ff"), ADAPTIVE), json!("AQL/"));
    assert_eq!(column("n", oid::INT4, -1).encode(Some("42"), ADAPTIVE), json!(42));
    assert_eq!(column("b", oid::BOOL, -1).encode(Some("t"), ADAPTIVE), json!(true));
}
