//! Validation and edge stamping of single events.

use super::*;
use serde_json::json;

fn parse(value: Value) -> Result<Event, EventError> {
    Event::from_value(value, None).map_err(|(e, _)| e)
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let event = parse(json!({
        "type": "track", "event": "Clicked", "anonymousId": "a1",
        "_metadata": {"bundled": ["Segment.io"]}, "custom": 7, "writeKey": "secret"
    }))
    .expect("valid");
    let out: Value = serde_json::from_slice(&event.to_json()).expect("json");
    assert_eq!(out["_metadata"], json!({"bundled": ["Segment.io"]}));
    assert_eq!(out["custom"], 7);
    assert!(out.get("writeKey").is_none(), "write key must never be written out");
    assert_eq!(out["type"], "track");
}

#[test]
fn identity_is_required() {
    assert_eq!(parse(json!({"type": "page"})), Err(EventError::MissingIdentity));
    assert_eq!(parse(json!({"type": "page", "userId": ""})), Err(EventError::MissingIdentity));
    assert!(parse(json!({"type": "page", "userId": 42})).is_ok());
}

#[test]
fn type_specific_fields_are_required() {
    assert_eq!(parse(json!({"type": "track", "userId": "u"})), Err(EventError::MissingField("event")));
    assert_eq!(parse(json!({"type": "group", "userId": "u"})), Err(EventError::MissingField("groupId")));
    assert_eq!(parse(json!({"type": "alias", "userId": "u"})), Err(EventError::MissingField("previousId")));
    assert!(parse(json!({"type": "identify", "userId": "u"})).is_ok());
}

#[test]
fn wrong_types_name_the_field() {
    let err = parse(json!({"type": "track", "event": 5, "userId": "u"})).expect_err("invalid");
    assert_eq!(err.to_string(), "field `event` must be a string, got a number");
    let err = parse(json!({"type": "track", "event": "e", "userId": "u", "properties": []})).expect_err("invalid");
    assert_eq!(err.kind(), "wrong_type");
    let err = parse(json!({"type": "track", "event": "e", "userId": "u", "timestamp": "soon"})).expect_err("invalid");
    assert_eq!(err.kind(), "bad_timestamp");
    assert_eq!(parse(json!({"type": "click", "userId": "u"})), Err(EventError::UnknownType("click".into())));
}

#[test]
fn rejected_values_come_back_untouched() {
    let sent = json!({"type": "track", "userId": "u", "writeKey": "k"});
    let (_, back) = Event::from_value(sent.clone(), None).expect_err("missing event");
    assert_eq!(back, sent);
}

#[test]
fn endpoint_type_fills_and_checks_type() {
    let event = Event::from_value(json!({"userId": "u", "event": "e"}), Some(EventType::Track)).expect("valid");
    assert_eq!(event.kind, EventType::Track);
    let (err, _) =
        Event::from_value(json!({"type": "page", "userId": "u"}), Some(EventType::Track)).expect_err("mismatch");
    assert_eq!(err.kind(), "type_mismatch");
}

#[test]
fn stamping_generates_a_uuid7_and_keeps_client_ids() {
    let now = Utc::now();
    let mut generated = parse(json!({"type": "page", "anonymousId": "a"})).expect("valid");
    generated.stamp(now, None);
    let id = generated.message_id.clone().expect("generated");
    assert_eq!(uuid::Uuid::parse_str(&id).expect("uuid").get_version_num(), 7);
    assert_eq!(generated.timestamp, Some(now));
    assert_eq!(generated.received_at, Some(now));

    let mut kept = parse(json!({"type": "page", "anonymousId": "a", "messageId": "m-1"})).expect("valid");
    kept.stamp(now, None);
    assert_eq!(kept.message_id.as_deref(), Some("m-1"));
}

#[test]
fn short_paths_map_to_types() {
    assert_eq!(EventType::from_short_path("t"), Some(EventType::Track));
    assert_eq!(EventType::from_short_path("s"), Some(EventType::Screen));
    assert_eq!(EventType::from_short_path("a"), Some(EventType::Alias));
    assert_eq!(EventType::from_short_path("x"), None);
    assert_eq!(EventType::from_short_path("track"), None);
}

#[test]
fn wire_form_reads_back() {
    let mut event = parse(json!({"type": "screen", "userId": "u", "name": "Home"})).expect("valid");
    // The wire carries milliseconds, so stamp with a time that has no finer part.
    event.stamp(crate::parse_timestamp("2026-01-01T12:00:00.123Z").expect("time"), None);
    assert_eq!(Event::from_slice(&event.to_json()), Ok(event));
}
