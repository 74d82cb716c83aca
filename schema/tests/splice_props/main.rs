//! Property test: the splice path and the owned-`Event` path agree on every generated
//! Segment-shaped request. Both must accept and reject the same items with the same error;
//! accepted items must be the same JSON (compared order-insensitively, because the owned path
//! writes named fields first, in struct order); and every member the edge does not own must
//! appear in the spliced output byte for byte. The routing view must hold the facts routing
//! reads of the owned event.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use clickstream_schema::{
    parse_json, parse_ndjson, parse_timestamp, Connection, Envelope, EventError, EventType, PayloadError, RawEnvelope,
};
use proptest::prelude::*;
use serde_json::Value;

mod generate;
use generate::{decoded, request, Kind, Member, Request};

/// What topic routing reads of an accepted event (the routing view leaves the other ids out).
type Facts = (EventType, [Option<String>; 4], Option<serde_json::Map<String, Value>>, Option<DateTime<Utc>>);

fn facts(event: &clickstream_schema::Event) -> Facts {
    let ids = [&event.event, &event.name, &event.anonymous_id, &event.user_id];
    (event.kind, ids.map(Clone::clone), event.properties.clone(), event.timestamp)
}

/// An accepted item: whether the client sent its `messageId`, its output, its routing facts.
type Accepted = (bool, Value, Facts);

/// What one path made of a request: envelope facts and each item's outcome.
#[derive(Debug)]
struct Outcome {
    write_key: Option<String>,
    items: Vec<Result<Accepted, (EventError, Value)>>,
}

fn received() -> DateTime<Utc> {
    parse_timestamp("2026-01-01T12:00:07.250Z").expect("time")
}

fn connection(request: &Request) -> Connection<'_> {
    let ip: IpAddr = "203.0.113.77".parse().expect("ip");
    Connection { ip, user_agent: request.user_agent.as_deref(), anonymize_ip: request.anonymize_ip }
}

fn endpoint(kind: Kind) -> Option<EventType> {
    match kind {
        Kind::Single(t) => Some(t),
        _ => None,
    }
}

fn owned_path(request: &Request) -> Result<Outcome, PayloadError> {
    let mut bytes = request.body.clone().into_bytes();
    let envelope = match request.kind {
        Kind::Batch => Envelope::from_batch(parse_json(&mut bytes)?)?,
        Kind::Single(_) => Envelope::from_single(parse_json(&mut bytes)?),
        Kind::Events => Envelope::from_array_or_single(parse_json(&mut bytes)?),
        Kind::Ndjson => parse_ndjson(&mut bytes),
    };
    let (write_key, sent_at) = (envelope.write_key.clone(), envelope.sent_at);
    let items = envelope
        .into_events(endpoint(request.kind))
        .into_iter()
        .map(|outcome| match outcome {
            Ok(mut event) => {
                let client_id = event.message_id.is_some();
                event.stamp(received(), sent_at);
                event.apply_connection(&connection(request));
                let value = serde_json::from_slice(&event.to_json()).expect("owned output is JSON");
                Ok((client_id, value, facts(&event)))
            }
            Err(rejected) => Err((rejected.error, rejected.payload)),
        })
        .collect();
    Ok(Outcome { write_key, items })
}

fn splice_path(request: &Request) -> Result<(Outcome, Vec<Vec<u8>>), PayloadError> {
    let raw = request.body.as_bytes();
    let envelope = match request.kind {
        Kind::Batch => RawEnvelope::from_batch(raw)?,
        Kind::Single(_) => RawEnvelope::from_single(raw)?,
        Kind::Events => RawEnvelope::from_array_or_single(raw)?,
        Kind::Ndjson => RawEnvelope::from_ndjson(raw),
    };
    let write_key = envelope.write_key.clone();
    let (batch, events) = envelope.into_events(endpoint(request.kind));
    let mut outputs = Vec::new();
    let items = events
        .into_iter()
        .map(|outcome| match outcome {
            Ok(event) => {
                let bytes = event.splice(&batch, received(), &connection(request));
                let value = serde_json::from_slice(&bytes).expect("spliced output is JSON");
                outputs.push(bytes);
                let view = event.routing_view(&batch, received(), true);
                Ok((event.message_id().is_some(), value, facts(&view)))
            }
            Err(rejected) => Err((rejected.error, rejected.payload)),
        })
        .collect();
    Ok((Outcome { write_key, items }, outputs))
}

/// A generated `messageId` is a fresh UUIDv7 on each path; equal once checked and blanked.
fn blank_generated_id(value: &mut Value) {
    let id = value["messageId"].as_str().expect("messageId is a string");
    assert_eq!(uuid::Uuid::parse_str(id).expect("a UUID").get_version_num(), 7);
    value["messageId"] = Value::String("generated".into());
}

/// The members of `event` the edge leaves alone, as `key:value` text the output must contain.
fn untouched(event: &[Member], anonymize_ip: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (index, (key, value)) in event.iter().enumerate() {
        // Of a key sent twice only the last is written.
        if event[index + 1..].iter().any(|(later, _)| decoded(later) == decoded(key)) {
            continue;
        }
        let keep = match decoded(key).as_str() {
            "messageId" => value.starts_with('"') && value != "\"\"",
            "anonymousId" | "userId" | "groupId" | "previousId" => value.starts_with('"'),
            "event" | "name" | "properties" | "traits" => value != "null",
            "context" | "integrations" => {
                let members = serde_json::from_str::<Value>(value).ok().filter(Value::is_object).map(|_| value);
                for member in members.map(|v| nested_members(v)).unwrap_or_default() {
                    let is_ip = member.0 == "\"ip\"";
                    if !is_ip || (!anonymize_ip && member.1.starts_with('"')) {
                        out.push(format!("{}:{}", member.0, member.1));
                    }
                }
                false
            }
            "type" | "writeKey" | "timestamp" | "originalTimestamp" | "sentAt" | "receivedAt" => false,
            _ => true,
        };
        if keep {
            out.push(format!("{key}:{value}"));
        }
    }
    out
}

/// The members of an object this test generated (compact, unique keys), by re-parsing each
/// member's value span with serde_json's streaming deserializer.
fn nested_members(object: &str) -> Vec<Member> {
    let map: serde_json::Map<String, Value> = serde_json::from_str(object).expect("object");
    let mut rest = &object[1..];
    let mut members = Vec::new();
    for _ in 0..map.len() {
        let mut keys = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        keys.next();
        let key_end = keys.byte_offset();
        let value_start = key_end + 1;
        let mut values = serde_json::Deserializer::from_str(&rest[value_start..]).into_iter::<Value>();
        values.next();
        let value_end = value_start + values.byte_offset();
        members.push((rest[..key_end].to_owned(), rest[value_start..value_end].to_owned()));
        rest = &rest[(value_end + 1).min(rest.len())..];
    }
    members
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn splice_matches_the_owned_event_path(request in request()) {
        let owned = owned_path(&request);
        let spliced = splice_path(&request);
        let (owned, (spliced, outputs)) = match (owned, spliced) {
            (Ok(o), Ok(s)) => (o, s),
            (Err(o), Err(s)) => {
                match (&o, &s) {
                    (PayloadError::InvalidJson(_), PayloadError::InvalidJson(_)) => {}
                    _ => prop_assert_eq!(o, s),
                }
                return Ok(());
            }
            (o, s) => return Err(TestCaseError::fail(format!("envelopes differ: {o:?} vs {s:?}"))),
        };
        prop_assert_eq!(&owned.write_key, &spliced.write_key);
        prop_assert_eq!(owned.items.len(), spliced.items.len());
        let mut accepted = outputs.iter();
        for (index, (o, s)) in owned.items.into_iter().zip(spliced.items).enumerate() {
            match (o, s) {
                (Ok((o_client, mut o_value, o_facts)), Ok((s_client, mut s_value, s_facts))) => {
                    prop_assert_eq!(o_client, s_client);
                    prop_assert_eq!(o_facts, s_facts);
                    if !o_client {
                        blank_generated_id(&mut o_value);
                        blank_generated_id(&mut s_value);
                    }
                    prop_assert_eq!(&o_value, &s_value, "item {} of {}", index, request.body);
                    let bytes = accepted.next().expect("one output per accepted item");
                    for member in untouched(&request.events[index], request.anonymize_ip) {
                        prop_assert!(
                            contains(bytes, member.as_bytes()),
                            "{member} not verbatim in {}", String::from_utf8_lossy(bytes)
                        );
                    }
                }
                (Err((o_error, o_payload)), Err((s_error, s_payload))) => {
                    prop_assert_eq!(o_error.kind(), s_error.kind());
                    if !matches!(o_error, EventError::InvalidJson(_)) {
                        prop_assert_eq!(o_error, s_error);
                    }
                    prop_assert_eq!(o_payload, s_payload);
                }
                (o, s) => {
                    return Err(TestCaseError::fail(format!("item {index} differs: {o:?} vs {s:?}\n{}", request.body)));
                }
            }
        }
    }
}

#[test]
fn map_equality_ignores_key_order() {
    let a: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).expect("json");
    let b: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).expect("json");
    assert_eq!(a, b);
}

/// Guards the generator: a good share of items must be accepted, and the rejects must cover
/// the error kinds, or the property above would prove little.
#[test]
fn generated_requests_cover_accepts_and_each_reject_kind() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut accepted, mut total, mut generated_ids, mut kinds) = (0, 0, 0, std::collections::BTreeSet::new());
    for _ in 0..1000 {
        let request = request().new_tree(&mut runner).expect("tree").current();
        let Ok(outcome) = owned_path(&request) else { continue };
        for item in outcome.items {
            total += 1;
            match item {
                Ok((client_id, _, _)) => {
                    accepted += 1;
                    generated_ids += usize::from(!client_id);
                }
                Err((error, _)) => {
                    kinds.insert(error.kind());
                }
            }
        }
    }
    eprintln!("{accepted} of {total} accepted ({generated_ids} with generated ids); rejects: {kinds:?}");
    assert!(accepted * 5 > total, "{accepted} of {total} accepted");
    assert!(generated_ids > 0);
    let expected = [
        "not_an_object",
        "missing_field",
        "wrong_type",
        "unknown_type",
        "type_mismatch",
        "missing_identity",
        "bad_timestamp",
    ];
    for kind in expected {
        assert!(kinds.contains(kind), "no {kind} reject in {kinds:?}");
    }
}
