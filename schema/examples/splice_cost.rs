//! What one event costs from request body to Kafka payload: the owned path (serde_json maps,
//! `Event`, re-serialization) against the splice path (simd-json borrowed values, bytes
//! copied), in the same process, on an analytics.js-shaped `Product Added` event posted alone
//! and in a batch of 20; and the splice path with the routing view the gateway also builds.
//! `cargo run --release -p clickstream-schema --example splice_cost`

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clickstream_schema::{parse_json, parse_timestamp, Connection, Envelope, EventType, RawEnvelope};

const EVENTS: u32 = 400_000;

/// An analytics.js `track` call as the loadtest generator writes it (see loadtest's payload).
fn event(i: u32, single: bool) -> String {
    let body_only = if single { r#","writeKey":"wk_4f1c2e","sentAt":"2026-03-01T10:15:02.481Z""# } else { "" };
    format!(
        r#"{{"type":"track","event":"Product Added","properties":{{"product_id":"sku-{i:05}","sku":"SKU-{i:05}","category":"Kitchen & Dining","name":"Enamel Dutch Oven, 5.5 qt","brand":"Field & Forge","variant":"Cerise","price":129.95,"quantity":1,"coupon":null,"position":3,"url":"https://shop.example/products/sku-{i:05}","image_url":"https://cdn.shop.example/img/sku-{i:05}.jpg","cart_id":"cart-1f3a9c02"}},"anonymousId":"1f3a9c02-6b7e-4d21-9a55-0c8f{i:08}","userId":"user-{i}","messageId":"ajs-next-1740824102481-{i:08}","timestamp":"2026-03-01T10:15:02.479Z","context":{{"library":{{"name":"analytics.js","version":"npm:next-1.76.0"}},"page":{{"path":"/products/sku-{i:05}","referrer":"https://shop.example/c/kitchen","search":"","title":"Enamel Dutch Oven, 5.5 qt | Shop","url":"https://shop.example/products/sku-{i:05}"}},"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15","locale":"en-US","timezone":"America/New_York"}},"integrations":{{}}{body_only}}}"#
    )
}

fn batch(first: u32, size: u32) -> String {
    let events: Vec<String> = (first..first + size).map(|i| event(i, false)).collect();
    format!(
        r#"{{"batch":[{}],"sentAt":"2026-03-01T10:15:02.481Z","writeKey":"wk_4f1c2e","context":{{"ip":"198.51.100.23"}}}}"#,
        events.join(",")
    )
}

/// Today's path: body → owned values → `Event` → stamped → serialized.
fn owned(body: &[u8], buf: &mut Vec<u8>, kind: Option<EventType>, now: DateTime<Utc>, conn: &Connection<'_>) -> usize {
    buf.clear();
    buf.extend_from_slice(body);
    let value = parse_json(buf).expect("json");
    let envelope =
        if kind.is_some() { Envelope::from_single(value) } else { Envelope::from_batch(value).expect("batch") };
    let sent_at = envelope.sent_at;
    let mut bytes = 0;
    for event in envelope.into_events(kind) {
        let mut event = event.expect("valid");
        event.stamp(now, sent_at);
        event.apply_connection(conn);
        bytes += black_box(event.to_json()).len();
    }
    bytes
}

/// The splice path: body scanned once into spans → checked from them → bytes copied and
/// spliced (`_buf` unused: the scan reads the client's bytes in place).
fn spliced(
    body: &[u8],
    _buf: &mut Vec<u8>,
    kind: Option<EventType>,
    now: DateTime<Utc>,
    conn: &Connection<'_>,
) -> usize {
    let envelope = if kind.is_some() {
        RawEnvelope::from_single(body).expect("json")
    } else {
        RawEnvelope::from_batch(body).expect("batch")
    };
    let (batch, events) = envelope.into_events(kind);
    let mut bytes = 0;
    for event in events {
        let event = event.expect("valid");
        bytes += black_box(event.splice(&batch, now, conn)).len();
    }
    bytes
}

/// The splice path as the gateway runs it: plus the owned facts topic routing reads, here
/// with the properties that property rules need.
fn routed(body: &[u8], buf: &mut Vec<u8>, kind: Option<EventType>, now: DateTime<Utc>, conn: &Connection<'_>) -> usize {
    routed_with(body, buf, kind, now, conn, true)
}

/// As [`routed`], for routes that read no properties (the default).
fn routed_plain(
    body: &[u8],
    buf: &mut Vec<u8>,
    kind: Option<EventType>,
    now: DateTime<Utc>,
    conn: &Connection<'_>,
) -> usize {
    routed_with(body, buf, kind, now, conn, false)
}

fn routed_with(
    body: &[u8],
    _buf: &mut Vec<u8>,
    kind: Option<EventType>,
    now: DateTime<Utc>,
    conn: &Connection<'_>,
    with_properties: bool,
) -> usize {
    let envelope = if kind.is_some() {
        RawEnvelope::from_single(body).expect("json")
    } else {
        RawEnvelope::from_batch(body).expect("batch")
    };
    let (batch, events) = envelope.into_events(kind);
    let mut bytes = 0;
    for event in events {
        let event = event.expect("valid");
        black_box(event.routing_view(&batch, now, with_properties));
        bytes += black_box(event.splice(&batch, now, conn)).len();
    }
    bytes
}

type Path = fn(&[u8], &mut Vec<u8>, Option<EventType>, DateTime<Utc>, &Connection<'_>) -> usize;

fn time(path: Path, bodies: &[Vec<u8>], per_body: u32, kind: Option<EventType>, conn: &Connection<'_>) -> f64 {
    let now = parse_timestamp("2026-03-01T10:15:03.002Z").expect("time");
    let mut buf = Vec::with_capacity(64 * 1024);
    let rounds = EVENTS / per_body;
    // One warm-up pass over the bodies, then the timed rounds.
    for body in bodies {
        black_box(path(body, &mut buf, kind, now, conn));
    }
    let started = Instant::now();
    for round in 0..rounds {
        let body = &bodies[round as usize % bodies.len()];
        black_box(path(black_box(body), &mut buf, kind, now, conn));
    }
    let per = |d: Duration| d.as_nanos() as f64 / f64::from(rounds * per_body);
    per(started.elapsed())
}

fn main() {
    let ip: IpAddr = "203.0.113.77".parse().expect("ip");
    let conn = Connection { ip, user_agent: Some("Mozilla/5.0 (Macintosh)"), anonymize_ip: true };
    let singles: Vec<Vec<u8>> = (0..64).map(|i| event(i, true).into_bytes()).collect();
    let batches: Vec<Vec<u8>> = (0..8).map(|i| batch(i * 20, 20).into_bytes()).collect();
    println!("event size: {} bytes as sent", singles[0].len());
    for (label, bodies, per_body, kind) in
        [("single /v1/t", &singles, 1, Some(EventType::Track)), ("batch of 20", &batches, 20, None)]
    {
        let before = time(owned, bodies, per_body, kind, &conn);
        let after = time(spliced, bodies, per_body, kind, &conn);
        let plain = time(routed_plain, bodies, per_body, kind, &conn);
        let gateway = time(routed, bodies, per_body, kind, &conn);
        println!("{label}:");
        println!("  owned Event path:             {before:7.0} ns/event");
        println!("  splice path:                  {after:7.0} ns/event  ratio {:.2}x", before / after);
        println!("  + routing view, no props:     {plain:7.0} ns/event  ratio {:.2}x", before / plain);
        println!("  + routing view with props:    {gateway:7.0} ns/event  ratio {:.2}x", before / gateway);
    }
}
