//! PostgreSQL columns as Debezium writes them: each type's Kafka Connect field schema under
//! the configured `decimal.handling.mode` and `time.precision.mode`, and each value's text
//! form (what pgoutput and a simple query both send) turned into that encoding.

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike as _};
use serde_json::{json, Map, Value};

use crate::config::{DecimalHandling, TimePrecision};
use crate::decimal;

/// One column of a captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    /// `atttypmod`: precision and scale of a numeric, fractional digits of a time; -1 for none.
    pub typmod: i32,
    /// Part of the primary key (the replica identity).
    pub key: bool,
    /// Declared `NOT NULL`.
    pub not_null: bool,
}

/// How a table's columns are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub decimals: DecimalHandling,
    pub times: TimePrecision,
}

mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const TIMETZ: u32 = 1266;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// PostgreSQL's default and largest fractional-second precision.
const MICROS_PRECISION: i32 = 6;

impl Column {
    /// Fractional digits of a time or timestamp column.
    fn time_precision(&self) -> i32 {
        if self.typmod < 0 {
            MICROS_PRECISION
        } else {
            self.typmod
        }
    }

    /// Precision and scale of a `numeric(p, s)`; `None` for a bare `numeric`.
    fn numeric_precision_scale(&self) -> Option<(i32, i32)> {
        (self.typmod >= 4).then(|| {
            let packed = self.typmod - 4;
            ((packed >> 16) & 0xffff, packed & 0xffff)
        })
    }

    /// The Kafka Connect field schema Debezium writes for this column.
    pub fn field_schema(&self, encoding: Encoding) -> Value {
        let mut schema = Map::new();
        let (kind, logical) = self.connect_type(encoding);
        match kind {
            Value::Object(mut structure) => {
                schema.insert("type".into(), json!("struct"));
                schema.insert("fields".into(), structure.remove("struct").unwrap_or_default());
            }
            kind => {
                schema.insert("type".into(), kind);
            }
        }
        schema.insert("optional".into(), Value::Bool(!self.not_null));
        if let Some((name, parameters)) = logical {
            schema.insert("name".into(), Value::String(name.to_owned()));
            schema.insert("version".into(), json!(1));
            if let Some(parameters) = parameters {
                schema.insert("parameters".into(), parameters);
            }
            if name == decimal::VARIABLE_SCALE_DECIMAL {
                schema.insert("doc".into(), json!("Variable scaled decimal"));
            }
        }
        schema.insert("field".into(), Value::String(self.name.clone()));
        Value::Object(schema)
    }

    /// The Connect type (a name, or a struct type with its fields) and the logical type's
    /// name and parameters.
    fn connect_type(&self, encoding: Encoding) -> (Value, Option<(&'static str, Option<Value>)>) {
        let adaptive = encoding.times != TimePrecision::Connect;
        let plain = |kind: &str| (Value::String(kind.to_owned()), None);
        let named = |kind: &str, name: &'static str| (Value::String(kind.to_owned()), Some((name, None)));
        match self.type_oid {
            oid::BOOL => plain("boolean"),
            oid::INT2 => plain("int16"),
            oid::INT4 => plain("int32"),
            oid::INT8 | oid::OID => plain("int64"),
            oid::FLOAT4 => plain("float"),
            oid::FLOAT8 => plain("double"),
            oid::BYTEA => plain("bytes"),
            oid::JSON | oid::JSONB => named("string", "io.debezium.data.Json"),
            oid::UUID => named("string", "io.debezium.data.Uuid"),
            oid::NUMERIC => match encoding.decimals {
                DecimalHandling::Double => plain("double"),
                DecimalHandling::String => plain("string"),
                DecimalHandling::Precise => match self.numeric_precision_scale() {
                    Some((precision, scale)) => {
                        let parameters =
                            json!({"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()});
                        (json!("bytes"), Some((decimal::DECIMAL, Some(parameters))))
                    }
                    None => {
                        let fields = json!([
                            {"type": "int32", "optional": false, "field": "scale"},
                            {"type": "bytes", "optional": false, "field": "value"}
                        ]);
                        (json!({"struct": fields}), Some((decimal::VARIABLE_SCALE_DECIMAL, None)))
                    }
                },
            },
            oid::DATE if adaptive => named("int32", "io.debezium.time.Date"),
            oid::DATE => named("int32", "org.apache.kafka.connect.data.Date"),
            oid::TIME => match encoding.times {
                TimePrecision::Adaptive if self.time_precision() <= 3 => named("int32", "io.debezium.time.Time"),
                TimePrecision::Adaptive | TimePrecision::AdaptiveTimeMicroseconds => {
                    named("int64", "io.debezium.time.MicroTime")
                }
                TimePrecision::Connect => named("int32", "org.apache.kafka.connect.data.Time"),
            },
            oid::TIMESTAMP if adaptive && self.time_precision() <= 3 => named("int64", "io.debezium.time.Timestamp"),
            oid::TIMESTAMP if adaptive => named("int64", "io.debezium.time.MicroTimestamp"),
            oid::TIMESTAMP => named("int64", "org.apache.kafka.connect.data.Timestamp"),
            oid::TIMESTAMPTZ => named("string", "io.debezium.time.ZonedTimestamp"),
            oid::TIMETZ => named("string", "io.debezium.time.ZonedTime"),
            _ => plain("string"),
        }
    }

    /// The value Debezium writes for this column's text form; `Null` for SQL NULL and for text
    /// that does not parse (PostgreSQL's `infinity`, say).
    pub fn encode(&self, text: Option<&str>, encoding: Encoding) -> Value {
        let Some(text) = text else { return Value::Null };
        self.encode_text(text, encoding).unwrap_or(Value::Null)
    }

    fn encode_text(&self, text: &str, encoding: Encoding) -> Option<Value> {
        let adaptive = encoding.times != TimePrecision::Connect;
        Some(match self.type_oid {
            oid::BOOL => Value::Bool(text == "t"),
            oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => Value::Number(text.parse::<i64>().ok()?.into()),
            oid::FLOAT4 | oid::FLOAT8 => json!(text.parse::<f64>().ok().filter(|f| f.is_finite())?),
            oid::BYTEA => {
                let bytes = decode_hex(text.strip_prefix("\\x")?)?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            oid::NUMERIC => match encoding.decimals {
                DecimalHandling::Double => json!(text.parse::<f64>().ok().filter(|f| f.is_finite())?),
                DecimalHandling::String => Value::String(text.to_owned()),
                DecimalHandling::Precise => match self.numeric_precision_scale() {
                    Some((_, scale)) => Value::String(decimal::connect_bytes(text, scale)?),
                    None => {
                        let scale = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
                        let scale = i32::try_from(scale).ok()?;
                        json!({"scale": scale, "value": decimal::connect_bytes(text, scale)?})
                    }
                },
            },
            oid::DATE => json!((NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()? - epoch_day()).num_days()),
            oid::TIME => {
                let time = NaiveTime::parse_from_str(text, "%H:%M:%S%.f").ok()?;
                let micros =
                    i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1_000);
                match encoding.times {
                    TimePrecision::Adaptive if self.time_precision() <= 3 => json!(micros / 1_000),
                    TimePrecision::Adaptive | TimePrecision::AdaptiveTimeMicroseconds => json!(micros),
                    TimePrecision::Connect => json!(micros / 1_000),
                }
            }
            oid::TIMESTAMP => {
                let time = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()?.and_utc();
                if adaptive && self.time_precision() > 3 {
                    json!(time.timestamp_micros())
                } else {
                    json!(time.timestamp_millis())
                }
            }
            oid::TIMESTAMPTZ => Value::String(zoned_timestamp(text)?),
            _ => Value::String(text.to_owned()),
        })
    }
}

fn epoch_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// `timestamptz` text (`2026-01-02 10:00:00.5+01`, in the session's time zone) as Debezium's
/// `ZonedTimestamp`: ISO 8601 in UTC, the fraction without trailing zeros.
fn zoned_timestamp(text: &str) -> Option<String> {
    // PostgreSQL writes the offset as `+01`, `+05:30` or `+05:30:15`; chrono wants minutes.
    let split = text.rfind(['+', '-']).filter(|&at| at > 10)?;
    let (local, offset) = text.split_at(split);
    let mut parts = offset[1..].split(':').map(|p| p.parse::<i32>().ok());
    let hours = parts.next()??;
    let minutes = parts.next().flatten().unwrap_or(0);
    let seconds = parts.next().flatten().unwrap_or(0);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let offset_seconds = sign * (hours * 3_600 + minutes * 60 + seconds);
    let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let utc = local - chrono::TimeDelta::seconds(i64::from(offset_seconds));
    let mut out = utc.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = utc.nanosecond();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok()).collect()
}

#[cfg(test)]
#[path = "columns_tests.rs"]
mod tests;
