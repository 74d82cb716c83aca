//! The parse alone, three ways, on the batch body `splice_cost` builds (20 analytics.js-sized
//! events): simd-json into borrowed values and dropped (the splice path before the scan),
//! simd-json's tape (no maps, nothing to drop: what a tape plus the old byte scanner would
//! have cost), and `RawEnvelope::from_batch` (the one validating scan, members and all).
//! Made for callgrind, which counts only `measured`:
//! `valgrind --tool=callgrind --toggle-collect='parse_cost::measured*' \
//!   target/release/examples/parse_cost tree|tape|scan`

use std::hint::black_box;

use clickstream_schema::RawEnvelope;

const ROUNDS: usize = 100;

fn event(i: usize) -> String {
    format!(
        r#"{{"type":"track","event":"Product Added","properties":{{"product_id":"sku-{i:05}","sku":"SKU-{i:05}","category":"Kitchen & Dining","name":"Enamel Dutch Oven, 5.5 qt","brand":"Field & Forge","variant":"Cerise","price":129.95,"quantity":1,"coupon":null,"position":3,"url":"https://shop.example/products/sku-{i:05}","image_url":"https://cdn.shop.example/img/sku-{i:05}.jpg","cart_id":"cart-1f3a9c02"}},"anonymousId":"1f3a9c02-6b7e-4d21-9a55-0c8f{i:08}","userId":"user-{i}","messageId":"ajs-next-1740824102481-{i:08}","timestamp":"2026-03-01T10:15:02.479Z","context":{{"library":{{"name":"analytics.js","version":"npm:next-1.76.0"}},"page":{{"path":"/products/sku-{i:05}","referrer":"https://shop.example/c/kitchen","search":"","title":"Enamel Dutch Oven, 5.5 qt | Shop","url":"https://shop.example/products/sku-{i:05}"}},"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15","locale":"en-US","timezone":"America/New_York"}},"integrations":{{}}}}"#
    )
}

#[inline(never)]
fn measured(mode: &str, body: &[u8], scratch: &mut Vec<u8>) -> usize {
    scratch.clear();
    scratch.extend_from_slice(body);
    match mode {
        "tree" => simd_json::to_borrowed_value(scratch)
            .map(|v| usize::from(matches!(black_box(v), simd_json::BorrowedValue::Object(_))))
            .unwrap_or(0),
        "tape" => simd_json::to_tape(scratch).map(|t| black_box(t).0.len()).unwrap_or(0),
        _ => RawEnvelope::from_batch(body).map(|e| black_box(e).write_key.is_some()).map_or(0, usize::from),
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "scan".into());
    let events: Vec<String> = (0..20).map(event).collect();
    let body =
        format!(r#"{{"batch":[{}],"sentAt":"2026-03-01T10:15:02.481Z","writeKey":"wk_4f1c2e"}}"#, events.join(","));
    let mut scratch = Vec::with_capacity(body.len());
    let mut total = 0;
    for _ in 0..ROUNDS {
        total += measured(&mode, body.as_bytes(), &mut scratch);
    }
    println!("{mode}: {} bytes per body, {ROUNDS} bodies of 20 events, {total}", body.len());
}
