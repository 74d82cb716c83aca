//! Debezium's column encodings turned back into plain JSON by the schema its JSON converter
//! writes next to each record: precise decimals, variable-scale decimals and the
//! `io.debezium.time.*` types. Without that schema the encodings are ambiguous, so they are
//! only counted.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat};
use serde_json::{Map, Number, Value};

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";

/// The most significant digits a decimal may have to survive a trip through a double: a
/// consumer reading the JSON number as a double gets the same digits back (DBL_DIG).
const EXACT_DOUBLE_DIGITS: usize = 15;

/// The column schemas of the struct field `name` (`after` or `before`) of an envelope schema.
pub fn struct_fields<'a>(schema: &'a Value, name: &str) -> Option<&'a [Value]> {
    let fields = schema.get("fields")?.as_array()?;
    let field = fields.iter().find(|field| field.get("field").and_then(Value::as_str) == Some(name))?;
    field.get("fields")?.as_array().map(Vec::as_slice)
}

/// The column schemas of a schema that describes the row itself (after Debezium's
/// `ExtractNewRecordState` transform, or any flat Kafka Connect struct).
pub fn row_fields(schema: &Value) -> Option<&[Value]> {
    schema.get("fields")?.as_array().map(Vec::as_slice)
}

/// Decodes every column whose schema names a logical type; returns how many such columns
/// could not be decoded (and were kept as they came).
pub fn decode_row(row: &mut Map<String, Value>, fields: &[Value]) -> u32 {
    let mut undecodable = 0;
    for field in fields {
        let (Some(column), Some(logical)) =
            (field.get("field").and_then(Value::as_str), field.get("name").and_then(Value::as_str))
        else {
            continue;
        };
        let Some(value) = row.get_mut(column).filter(|value| !value.is_null()) else {
            continue;
        };
        match decode_value(logical, field, value) {
            Decoded::Replaced(decoded) => *value = decoded,
            Decoded::Unchanged => {}
            Decoded::Failed => undecodable += 1,
        }
    }
    undecodable
}

enum Decoded {
    Replaced(Value),
    /// A type that is plain JSON already (strings, doubles, zoned times) or one we do not know.
    Unchanged,
    Failed,
}

fn decode_value(logical: &str, schema: &Value, value: &Value) -> Decoded {
    let decoded = match logical {
        DECIMAL => {
            let scale = schema.get("parameters").and_then(|p| p.get("scale")).and_then(integer);
            scale.and_then(|scale| decimal(value.as_str()?, scale))
        }
        VARIABLE_SCALE_DECIMAL => {
            let scale = value.get("scale").and_then(integer);
            scale.and_then(|scale| decimal(value.get("value")?.as_str()?, scale))
        }
        "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => value.as_i64().and_then(date),
        "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp" => {
            value.as_i64().and_then(|ms| timestamp(ms, 1_000, SecondsFormat::Millis))
        }
        "io.debezium.time.MicroTimestamp" => {
            value.as_i64().and_then(|us| timestamp(us, 1_000_000, SecondsFormat::Micros))
        }
        "io.debezium.time.NanoTimestamp" => {
            value.as_i64().and_then(|ns| timestamp(ns, 1_000_000_000, SecondsFormat::Nanos))
        }
        "io.debezium.time.Time" | "org.apache.kafka.connect.data.Time" => {
            value.as_i64().and_then(|ms| time_of_day(ms, 1_000, 3))
        }
        "io.debezium.time.MicroTime" => value.as_i64().and_then(|us| time_of_day(us, 1_000_000, 6)),
        "io.debezium.time.NanoTime" => value.as_i64().and_then(|ns| time_of_day(ns, 1_000_000_000, 9)),
        _ => return Decoded::Unchanged,
    };
    decoded.map_or(Decoded::Failed, Decoded::Replaced)
}

/// Kafka Connect writes the decimal's scale parameter as a string; accept a number too.
fn integer(value: &Value) -> Option<i32> {
    match value {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A decimal from base64 big-endian two's-complement unscaled bytes and its scale: a JSON
/// number when a double holds its digits exactly, else its exact digits as a string.
pub fn decimal(base64_bytes: &str, scale: i32) -> Option<Value> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64_bytes).ok()?;
    let (negative, digits) = unscaled_digits(&bytes);
    let text = place_point(negative, &digits, scale)?;
    Some(decimal_value(text))
}

/// The decimal digits of a big-endian two's-complement integer, and its sign.
fn unscaled_digits(bytes: &[u8]) -> (bool, String) {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        // Two's complement: invert and add one for the magnitude.
        for byte in &mut magnitude {
            *byte = !*byte;
        }
        for byte in magnitude.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
    }
    // Repeated division by 10 of the big-endian magnitude, least significant digit first.
    let mut digits = Vec::new();
    while magnitude.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in &mut magnitude {
            let current = (remainder << 8) | u32::from(*byte);
            *byte = (current / 10) as u8;
            remainder = current % 10;
        }
        digits.push(b'0' + remainder as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    (negative, String::from_utf8(digits).unwrap_or_default())
}

/// `digits` × 10^-scale as decimal text, e.g. ("1999", 2) → "19.99", ("5", -2) → "500".
fn place_point(negative: bool, digits: &str, scale: i32) -> Option<String> {
    let mut text = String::with_capacity(digits.len() + 4);
    if negative {
        text.push('-');
    }
    if scale <= 0 {
        text.push_str(digits);
        // A negative scale is rare (Oracle); bound it so a hostile value cannot allocate much.
        let zeros = usize::try_from(-i64::from(scale)).ok().filter(|&z| z <= 1_000)?;
        if digits != "0" {
            text.extend(std::iter::repeat_n('0', zeros));
        }
        return Some(text);
    }
    let scale = usize::try_from(scale).ok().filter(|&s| s <= 1_000)?;
    if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        text.push_str(whole);
        text.push('.');
        text.push_str(fraction);
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', scale - digits.len()));
        text.push_str(digits);
    }
    Some(text)
}

/// The decimal as a JSON number when a double keeps every digit (an integer when it has no
/// fraction), else as its exact text.
fn decimal_value(text: String) -> Value {
    if !text.contains('.') {
        if let Ok(integer) = text.parse::<i64>() {
            return Value::Number(integer.into());
        }
    }
    let significant = text.bytes().filter(u8::is_ascii_digit).skip_while(|&b| b == b'0').collect::<Vec<_>>();
    let significant = significant.len() - significant.iter().rev().take_while(|&&b| b == b'0').count();
    let integer_digits = text.trim_start_matches('-').split('.').next().map_or(0, str::len);
    if significant <= EXACT_DOUBLE_DIGITS && integer_digits <= 300 {
        if let Some(number) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(number);
        }
    }
    Value::String(text)
}

fn date(days: i64) -> Option<Value> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let day = epoch.checked_add_signed(chrono::TimeDelta::try_days(days)?)?;
    Some(Value::String(day.format("%Y-%m-%d").to_string()))
}

/// An instant counted in `per_second` units since the epoch, as RFC 3339 in UTC. A PostgreSQL
/// `timestamp` without time zone arrives the same way, as if it were UTC.
fn timestamp(count: i64, per_second: i64, precision: SecondsFormat) -> Option<Value> {
    let seconds = count.div_euclid(per_second);
    let nanos = count.rem_euclid(per_second) * (1_000_000_000 / per_second);
    let time = DateTime::from_timestamp(seconds, u32::try_from(nanos).ok()?)?;
    Some(Value::String(time.to_rfc3339_opts(precision, true)))
}

/// A time of day counted in `per_second` units since midnight, as `HH:MM:SS.fff…`.
fn time_of_day(count: i64, per_second: i64, fraction_digits: usize) -> Option<Value> {
    let seconds = u32::try_from(count.div_euclid(per_second)).ok()?;
    let fraction = count.rem_euclid(per_second);
    let time = NaiveTime::from_num_seconds_from_midnight_opt(seconds, 0)?;
    Some(Value::String(format!("{}.{fraction:0fraction_digits$}", time.format("%H:%M:%S"))))
}

/// Columns of a row that came without a schema but look like a precise decimal Debezium
/// encoded: a `{scale, value}` struct anywhere, or base64 text instead of a number in `price`,
/// the column enrichment reads as a number.
pub fn undecodable_without_schema(row: &Map<String, Value>) -> u32 {
    let variable_scale = row
        .values()
        .filter(|value| match value.as_object() {
            Some(map) => {
                map.len() == 2
                    && map.get("scale").is_some_and(Value::is_i64)
                    && map.get("value").is_some_and(Value::is_string)
            }
            None => false,
        })
        .count();
    let price = row.get("price").and_then(Value::as_str).is_some_and(looks_like_encoded_decimal);
    u32::try_from(variable_scale).unwrap_or(u32::MAX).saturating_add(u32::from(price))
}

fn looks_like_encoded_decimal(text: &str) -> bool {
    text.parse::<f64>().is_err()
        && !text.is_empty()
        && text.len().is_multiple_of(4)
        && base64::engine::general_purpose::STANDARD.decode(text).is_ok()
}

#[cfg(test)]
#[path = "debezium_tests.rs"]
mod tests;
