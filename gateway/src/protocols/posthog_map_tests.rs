//! Unit tests of the PostHog → Segment mapping.

use super::*;

fn map(event: Value) -> Value {
    let sent = clickstream_schema::parse_timestamp("2024-05-01T10:00:05Z");
    to_segment(0, event, sent, Utc::now()).expect("maps")
}

#[test]
fn a_pageview_is_a_page_with_its_context_and_every_property() {
    let event = map(json!({
        "event": "$pageview", "distinct_id": "dev-1", "uuid": "0190-aa", "timestamp": "2024-05-01T10:00:00Z",
        "properties": {"$device_id": "dev-1", "$current_url": "https://shop.example/p?utm_source=x#top",
            "$pathname": "/p", "$referrer": "$direct", "title": "Shoes", "$lib": "web", "$lib_version": "1.2",
            "token": "phc_secret", "$session_id": "s1"},
        "$set_once": {"first": 1}, "offset": 5
    }));
    assert_eq!(event["type"], "page");
    assert_eq!(event["anonymousId"], "dev-1");
    assert!(event.get("userId").is_none(), "the device's own id is anonymous");
    assert_eq!(event["messageId"], "0190-aa");
    assert_eq!(event["originalTimestamp"], "2024-05-01T10:00:00.000Z");
    assert_eq!(event["sentAt"], "2024-05-01T10:00:05.000Z");
    assert_eq!(
        event["context"]["page"],
        json!({"search": "?utm_source=x", "url": "https://shop.example/p?utm_source=x#top", "path": "/p", "title": "Shoes"})
    );
    assert_eq!(event["context"]["library"], json!({"name": "web", "version": "1.2"}));
    assert_eq!(event["context"]["posthog"], json!({"$set_once": {"first": 1}, "offset": 5}));
    assert_eq!(event["properties"]["$session_id"], "s1");
    assert!(event["properties"].get("token").is_none(), "the project key is stripped");
}

#[test]
fn identify_alias_and_group_take_their_ids_from_posthogs_fields() {
    let identify = map(json!({"event": "$identify", "distinct_id": "user-9",
        "properties": {"$anon_distinct_id": "dev-1", "$device_id": "dev-1"}, "$set": {"email": "a@b.c"}}));
    assert_eq!((identify["type"].as_str(), identify["userId"].as_str()), (Some("identify"), Some("user-9")));
    assert_eq!(identify["anonymousId"], "dev-1");
    assert_eq!(identify["traits"], json!({"email": "a@b.c"}));

    let alias = map(json!({"event": "$create_alias", "distinct_id": "old", "properties": {"alias": "new"}}));
    assert_eq!((alias["userId"].as_str(), alias["previousId"].as_str()), (Some("new"), Some("old")));

    let group = map(json!({"event": "$groupidentify", "distinct_id": 42,
        "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "pro"}}}));
    assert_eq!((group["type"].as_str(), group["groupId"].as_str()), (Some("group"), Some("acme")));
    assert_eq!(group["userId"], "42", "a numeric distinct_id is its decimal text");
    assert_eq!(group["traits"], json!({"plan": "pro"}));
    assert_eq!(group["properties"]["$group_type"], "company");
}

#[test]
fn a_custom_event_is_a_track_and_server_ids_name_the_user() {
    let track = map(json!({"event": "signed up", "distinct_id": "user-1", "properties": {"plan": "pro",
        "$device_id": "dev-2"}, "$set": {"name": "Ann"}}));
    assert_eq!((track["type"].as_str(), track["event"].as_str()), (Some("track"), Some("signed up")));
    assert_eq!((track["userId"].as_str(), track["anonymousId"].as_str()), (Some("user-1"), Some("dev-2")));
    assert_eq!(track["context"]["traits"], json!({"name": "Ann"}));
    let personless = map(json!({"event": "x", "distinct_id": "d", "properties": {"$process_person_profile": false}}));
    assert_eq!(personless["anonymousId"], "d");
}

#[test]
fn events_that_cannot_map_say_why() {
    let kind = |event: Value| to_segment(3, event, None, Utc::now()).expect_err("rejected").0;
    assert_eq!(kind(json!([1])).kind, "not_an_object");
    assert_eq!(kind(json!({"distinct_id": "d"})).kind, "missing_event");
    assert_eq!(kind(json!({"event": "x"})).kind, "missing_identity");
    assert_eq!(kind(json!({"event": "x", "distinct_id": "d", "properties": 1})).kind, "invalid_properties");
    assert_eq!(kind(json!({"event": "$create_alias", "distinct_id": "d"})).kind, "missing_alias");
    let rejected = kind(json!({"event": "$groupidentify", "distinct_id": "d"}));
    assert_eq!((rejected.kind, rejected.index), ("missing_group_key", 3));
}
