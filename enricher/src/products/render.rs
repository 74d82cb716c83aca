//! A product version as events show it under `enrichment.product`, serialized once when the
//! version is stored rather than once per event that joins it.

use std::io::Write as _;
use std::sync::Arc;

use clickstream_schema::format_timestamp;
use serde_json::{Map, Value};

use super::versioned::{Basis, Origin};

/// The row's columns in table order, `id` when the row has none, then `_version`: the row's
/// valid-from time, where that time came from, and the products record that made it.
pub fn product_json(id: &str, row: &Map<String, Value>, origin: &Origin) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(64 + row.len() * 24);
    out.push(b'{');
    for (index, (column, value)) in row.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_json(&mut out, column);
        out.push(b':');
        write_json(&mut out, value);
    }
    if !row.contains_key("id") {
        if !row.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"id\":");
        write_json(&mut out, id);
    }
    // Either a column or `id` came before.
    out.extend_from_slice(b",\"_version\":{\"validFrom\":");
    let valid_from = (origin.basis != Basis::Always)
        .then(|| chrono::DateTime::from_timestamp_millis(origin.valid_from_ms))
        .flatten();
    match valid_from {
        Some(time) => write_json(&mut out, &format_timestamp(time)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"basis\":");
    write_json(&mut out, origin.basis.as_str());
    if origin.offset >= 0 {
        // Writing to a `Vec` cannot fail.
        let _ = write!(out, ",\"partition\":{},\"offset\":{}", origin.partition, origin.offset);
    }
    out.extend_from_slice(b"}}");
    out.into()
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing a string or a JSON value to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_then_the_id_then_the_version() {
        let row = json!({"name": "Mug", "price": 9.5}).as_object().cloned().unwrap_or_default();
        let origin = Origin { valid_from_ms: 1_767_225_600_000, basis: Basis::SourceTs, partition: 1, offset: 7 };
        let text = String::from_utf8(product_json("p1", &row, &origin).to_vec()).expect("utf-8");
        assert_eq!(
            text,
            r#"{"name":"Mug","price":9.5,"id":"p1","_version":{"validFrom":"2026-01-01T00:00:00.000Z","basis":"source_ts","partition":1,"offset":7}}"#
        );
        let always = product_json("p1", &Map::new(), &Origin::ALWAYS);
        assert_eq!(&*always, br#"{"id":"p1","_version":{"validFrom":null,"basis":"always"}}"#);
    }
}
