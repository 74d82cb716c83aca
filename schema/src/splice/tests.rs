//! Examples of the splice: what is copied, what is rewritten, what is dropped.

use std::net::IpAddr;

use super::*;

fn connection(anonymize_ip: bool) -> Connection<'static> {
    let ip: IpAddr = "203.0.113.77".parse().expect("ip");
    Connection { ip, user_agent: Some("Mozilla/5.0 \"quoted\""), anonymize_ip }
}

fn at(text: &str) -> DateTime<Utc> {
    parse_timestamp(text).expect("time")
}

#[test]
fn untouched_members_keep_their_bytes_and_order() {
    let body = br#"{"userId": 42, "event":"Clicked","properties":{"price":1.50,"n":1e3,"s":"\u00e9"},
        "writeKey":"secret","zeta":[1, 2],"messageId":"m-1","timestamp":"2026-01-01T13:00:00+01:00"}"#;
    let envelope = RawEnvelope::from_single(body).expect("json");
    let (batch, events) = envelope.into_events(Some(EventType::Track));
    let event = events.into_iter().next().expect("one").expect("valid");
    assert_eq!(event.message_id().as_deref(), Some("m-1"));
    assert_eq!(event.user_id().as_deref(), Some("42"));
    let out = event.splice(&batch, at("2026-01-01T12:00:05Z"), &connection(false));
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(
        text,
        concat!(
            r#"{"type":"track","userId":"42","event":"Clicked","properties":{"price":1.50,"n":1e3,"s":"\u00e9"},"#,
            r#""zeta":[1, 2],"messageId":"m-1","timestamp":"2026-01-01T12:00:00.000Z","#,
            r#""context":{"ip":"203.0.113.77","userAgent":"Mozilla/5.0 \"quoted\""},"#,
            r#""originalTimestamp":"2026-01-01T12:00:00.000Z","receivedAt":"2026-01-01T12:00:05.000Z"}"#
        )
    );
}

#[test]
fn arrays_of_more_events_than_allowed_are_refused_while_scanned() {
    let batch = br#"{"batch":[{"type":"track"},{},[1]]}"#;
    assert_eq!(RawEnvelope::from_batch_capped(batch, 3).map(|e| e.event_count()), Ok(3));
    assert_eq!(RawEnvelope::from_batch_capped(batch, 2).err(), Some(PayloadError::TooManyEvents { limit: 2 }));
    // Broken JSON after the cap is not read: the count is what refuses it.
    let broken = br#"[{}, {}, {]"#;
    assert_eq!(
        RawEnvelope::from_array_or_single_capped(broken, 1).err(),
        Some(PayloadError::TooManyEvents { limit: 1 })
    );
    assert!(matches!(RawEnvelope::from_array_or_single_capped(broken, 5), Err(PayloadError::InvalidJson(_))));
    // Only arrays of events count: a single event, or arrays inside one, do not.
    let single = br#"{"type":"track","properties":{"list":[1,2,3,4]}}"#;
    assert_eq!(RawEnvelope::from_array_or_single_capped(single, 1).map(|e| e.event_count()), Ok(1));
}

#[test]
fn ndjson_of_more_lines_than_allowed_is_refused_before_a_line_is_scanned() {
    // Blank lines do not count; broken ones do, and are not read once the count refuses.
    let body = b"{\"type\":\"track\"}\n\n  \n{}\r\n{broken\n";
    assert_eq!(RawEnvelope::from_ndjson_capped(body, 3).map(|e| e.event_count()), Ok(3));
    assert_eq!(RawEnvelope::from_ndjson_capped(body, 2).err(), Some(PayloadError::TooManyEvents { limit: 2 }));
}

#[test]
fn batch_fields_merge_under_the_event() {
    let body = br#"{"writeKey":"k","sentAt":"2026-01-01T12:00:00Z","context":{"ip":"198.51.100.9","locale":"fr"},
        "integrations":{"All":false},"batch":[{"type":"page","anonymousId":"a","context":{"locale":"de"}}]}"#;
    let envelope = RawEnvelope::from_batch(body).expect("batch");
    assert_eq!(envelope.write_key.as_deref(), Some("k"));
    let (batch, events) = envelope.into_events(None);
    let event = events.into_iter().next().expect("one").expect("valid");
    let out = event.splice(&batch, at("2026-01-01T12:00:01Z"), &connection(true));
    let value: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(
        value["context"],
        serde_json::json!({"locale":"de","ip":"198.51.100.0","userAgent":"Mozilla/5.0 \"quoted\""})
    );
    assert_eq!(value["integrations"], serde_json::json!({"All": false}));
    assert_eq!(value["sentAt"], "2026-01-01T12:00:00.000Z");
    assert_eq!(uuid::Uuid::parse_str(value["messageId"].as_str().expect("id")).expect("uuid").get_version_num(), 7);
}

#[test]
fn rejects_carry_the_payload() {
    let body = br#"[{"type":"track","userId":"u"}, 7]"#;
    let (_, events) = RawEnvelope::from_array_or_single(body).expect("json").into_events(None);
    let errors: Vec<_> = events.into_iter().map(|e| e.expect_err("invalid")).collect();
    assert_eq!(errors[0].error, EventError::MissingField("event"));
    assert_eq!(errors[0].payload, serde_json::json!({"type":"track","userId":"u"}));
    assert_eq!(errors[1].error, EventError::NotAnObject("a number"));
}

#[test]
fn duplicate_keys_resolve_as_the_owned_path_does() {
    for body in [
        &br#"{"type":"track","event":"e","userId":"a","userId":5.5}"#[..],
        br#"{"type":"track","event":"e","userId":5.5,"userId":"a"}"#,
        br#"{"type":"page","userId":"a","context":{"ip":"1.2.3.4"},"context":{"locale":"x"},"k":1,"k":2}"#,
        br#"{"type":"page","userId":"a","context":{"ip":"1.2.3.4","ip":7,"userAgent":null,"userAgent":"x"}}"#,
        br#"{"type":"page","userId":"a","properties":{"a":1,"a":{"b":2}},"integrations":{"x":1,"x":false}}"#,
    ] {
        let mut owned_bytes = body.to_vec();
        let value = crate::parse_json(&mut owned_bytes).expect("json");
        let owned = crate::Event::from_value(value, None).map_err(|(e, _)| e);
        let (batch, events) = RawEnvelope::from_single(body).expect("json").into_events(None);
        let spliced = events.into_iter().next().expect("one");
        match (owned, spliced) {
            (Err(o), Err(s)) => assert_eq!(o, s.error),
            (Ok(mut o), Ok(s)) => {
                let now = at("2026-01-01T12:00:00Z");
                o.stamp(now, None);
                o.apply_connection(&connection(false));
                assert_eq!(s.routing_view(&batch, now, true).properties, o.properties);
                let mut o: serde_json::Value = serde_json::from_slice(&o.to_json()).expect("json");
                let mut s: serde_json::Value =
                    serde_json::from_slice(&s.splice(&batch, now, &connection(false))).expect("json");
                o["messageId"] = "id".into();
                s["messageId"] = "id".into();
                assert_eq!(o, s);
            }
            (o, s) => panic!("{} differs: {o:?} vs {s:?}", String::from_utf8_lossy(body)),
        };
    }
}

/// Objects past the pairwise limit take the hash-set paths: the last copy of a repeated key
/// stays where it was sent, and the batch's context fills in only the keys the event lacks.
#[test]
fn many_keys_resolve_as_few_do() {
    let keys = |prefix: &str, n: usize| (0..n).map(|i| format!(r#""{prefix}{i}":{i}"#)).collect::<Vec<_>>().join(",");
    let top = keys("t", 100);
    let own = keys("c", 100);
    let shared = keys("c", 150);
    let body = format!(
        r#"{{"context":{{{shared},"locale":"fr"}},"batch":[{{"type":"page","userId":"a",{top},"t7":"again","context":{{{own},"c3":"again"}}}}]}}"#
    );
    let (batch, events) = RawEnvelope::from_batch(body.as_bytes()).expect("batch").into_events(None);
    let event = events.into_iter().next().expect("one").expect("valid");
    let out: serde_json::Value =
        serde_json::from_slice(&event.splice(&batch, at("2026-01-01T12:00:00Z"), &connection(false))).expect("json");
    let object = out.as_object().expect("object");
    assert_eq!(out["t7"], "again");
    assert_eq!(out["t99"], 99);
    assert_eq!(object.keys().filter(|k| k.starts_with('t') && k[1..].parse::<u32>().is_ok()).count(), 100);
    let context = out["context"].as_object().expect("context");
    assert_eq!(out["context"]["c3"], "again");
    assert_eq!(out["context"]["c120"], 120);
    assert_eq!(out["context"]["locale"], "fr");
    assert_eq!(context.keys().filter(|k| k.starts_with('c') && k[1..].parse::<u32>().is_ok()).count(), 150);
}

/// Segment's spec allows only strings, but some server libraries send integer message ids; both
/// paths keep them as their decimal text (so dedup sees them too), and a fraction is refused.
#[test]
fn a_numeric_message_id_becomes_its_text_on_both_paths() {
    let body = br#"{"type":"track","event":"E","anonymousId":"a","messageId":12345678901}"#;
    let envelope = RawEnvelope::from_single(body).expect("json");
    let (batch, events) = envelope.into_events(None);
    let event = events.into_iter().next().expect("one").expect("valid");
    assert_eq!(event.message_id().as_deref(), Some("12345678901"));
    let spliced: serde_json::Value =
        serde_json::from_slice(&event.splice(&batch, at("2026-01-01T12:00:05Z"), &connection(false))).expect("json");
    assert_eq!(spliced["messageId"], "12345678901");
    let owned = Event::from_value(serde_json::from_slice(body).expect("json"), None).expect("owned");
    assert_eq!(owned.message_id.as_deref(), Some("12345678901"));

    let fraction = br#"{"type":"track","event":"E","anonymousId":"a","messageId":1.5}"#;
    let (_, mut events) = RawEnvelope::from_single(fraction).expect("json").into_events(None);
    let rejected = events.remove(0).expect_err("a fraction is not an id");
    assert_eq!(rejected.error.kind(), "wrong_type");
}
