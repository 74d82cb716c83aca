//! The matcher and validation through the public API, with configs written as TOML.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use clickstream_routing::{EventFacts, FallbackReason, PartitionKey, Router, RoutingConfig};
use clickstream_schema::Event;
use serde_json::{json, Value};

fn router(toml_text: &str) -> Router {
    let config: RoutingConfig = toml::from_str(toml_text).expect("config parses");
    Router::new(&config, "events.raw").unwrap_or_else(|problems| panic!("config is valid: {problems:?}"))
}

fn problems(toml_text: &str) -> Vec<String> {
    let config: RoutingConfig = toml::from_str(toml_text).expect("config parses");
    Router::check(&config, "events.raw", &()).iter().map(ToString::to_string).collect()
}

fn event(value: Value) -> Event {
    let mut event = Event::from_value(value, None).expect("valid event");
    event.stamp(Utc::now(), None);
    event
}

/// Topics and the deciding rule for an event from `source`, with every topic existing.
fn route(router: &Router, value: Value, source: &str) -> (Vec<String>, String) {
    let event = event(value);
    let decision = router.route(&EventFacts::new(&event, source, Utc::now()), &());
    (decision.topics, decision.rule_name.to_owned())
}

const PAYMENTS: &str = r#"
    [[rules]]
    name = "payments"
    event = ["Order Completed", "Payment *"]
    topics = ["events.payments", "events.raw"]
"#;

#[test]
fn no_rules_send_everything_to_the_raw_topic_keyed_by_visitor() {
    let router = Router::new(&RoutingConfig::default(), "my.raw").expect("default config is valid");
    let event = event(json!({"type": "track", "event": "A", "anonymousId": "a1", "userId": "u1"}));
    let decision = router.route(&EventFacts::new(&event, "web", Utc::now()), &());
    assert_eq!(decision.topics, ["my.raw"]);
    assert_eq!(decision.key, PartitionKey::Keyed("a1".into()));
    assert_eq!(decision.rule, None);
    assert!(!router.needs_topic_metadata());
}

#[test]
fn payments_fan_out_and_the_rest_go_to_raw() {
    let router = router(PAYMENTS);
    let order = json!({"type": "track", "event": "Order Completed", "userId": "u1"});
    assert_eq!(route(&router, order, "web"), (vec!["events.payments".into(), "events.raw".into()], "payments".into()));
    let refund = json!({"type": "track", "event": "Payment Refunded", "userId": "u1"});
    assert_eq!(route(&router, refund, "web").1, "payments", "prefix pattern");
    let page = json!({"type": "track", "event": "Page Viewed", "userId": "u1"});
    assert_eq!(route(&router, page, "web"), (vec!["events.raw".into()], "default".into()));
}

#[test]
fn each_match_kind_decides() {
    let router = router(
        r#"
        [[rules]]
        name = "by-type"
        type = "identify"
        topics = ["t.identify"]
        [[rules]]
        name = "by-glob"
        event = "Checkout Step ?"
        topics = ["t.checkout"]
        [[rules]]
        name = "by-source"
        source = "backend-*"
        topics = ["t.backend"]
        [[rules]]
        name = "by-value"
        property_equals = { plan = "pro", seats = "5" }
        topics = ["t.pro"]
        [[rules]]
        name = "by-presence"
        property = "coupon"
        topics = ["t.coupon"]
        [[rules]]
        name = "by-age"
        older_than_secs = 86400
        topics = ["t.historical"]
        "#,
    );
    let track = |extra: Value| {
        let mut e = json!({"type": "track", "event": "X", "userId": "u"});
        e.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        e
    };
    assert_eq!(route(&router, json!({"type": "identify", "userId": "u"}), "web").1, "by-type");
    assert_eq!(route(&router, track(json!({"event": "Checkout Step 2"})), "web").1, "by-glob");
    assert_eq!(route(&router, track(json!({"event": "Checkout Step 12"})), "web").1, "default");
    assert_eq!(route(&router, track(json!({})), "backend-billing").1, "by-source");
    let pro = track(json!({"properties": {"plan": "pro", "seats": 5}}));
    assert_eq!(route(&router, pro, "web").1, "by-value", "numbers compare as their JSON text");
    let free = track(json!({"properties": {"plan": "free", "seats": 5}}));
    assert_eq!(route(&router, free, "web").1, "default");
    assert_eq!(route(&router, track(json!({"properties": {"coupon": "X1"}})), "web").1, "by-presence");
    assert_eq!(route(&router, track(json!({"properties": {"coupon": null}})), "web").1, "default");
    let old = (Utc::now() - Duration::days(3)).to_rfc3339();
    assert_eq!(route(&router, track(json!({"timestamp": old})), "web").1, "by-age");
    let recent = (Utc::now() - Duration::hours(1)).to_rfc3339();
    assert_eq!(route(&router, track(json!({"timestamp": recent})), "web").1, "default");
}

#[test]
fn templates_need_the_allow_list_and_an_existing_topic() {
    let router = router(
        r#"
        allowed_topics = ["events.web", "events.app*"]
        [[rules]]
        topics = ["events.{source}"]
        key = "random"
        "#,
    );
    assert!(router.needs_topic_metadata());
    let existing: HashSet<String> = ["events.web".to_owned(), "events.raw".to_owned()].into();
    let e = event(json!({"type": "track", "event": "E", "userId": "u"}));
    let decide = |source: &str| router.route(&EventFacts::new(&e, source, Utc::now()), &existing);
    let allowed = decide("web");
    assert_eq!((allowed.topics.clone(), allowed.key.clone()), (vec!["events.web".into()], PartitionKey::Random));
    let denied = decide("Partner Feed");
    assert_eq!(denied.topics, ["events.raw"]);
    assert_eq!(denied.key, PartitionKey::Keyed("u".into()), "the default route's key");
    let reason = denied.fallback.expect("fallback").reason;
    assert_eq!(reason, FallbackReason::NotAllowed("events.partner_feed".into()));
    let missing = decide("app-ios");
    assert_eq!(missing.topics, ["events.raw"]);
    assert_eq!(missing.fallback.expect("fallback").reason, FallbackReason::Missing("events.app-ios".into()));
}

#[test]
fn explanations_say_which_condition_decided() {
    let router = router(PAYMENTS);
    let order = event(json!({"type": "track", "event": "Order Completed", "userId": "u1"}));
    let text = router.explain(&EventFacts::new(&order, "web", Utc::now()), &()).to_string();
    assert!(
        text.contains("rule `payments` matches: event `Order Completed` matches one of `Order Completed`, `Payment *`"),
        "{text}"
    );
    assert!(text.contains("topics: events.payments, events.raw"), "{text}");
    assert!(text.contains("key: `u1`"), "{text}");
    let page = event(json!({"type": "page", "name": "Home", "anonymousId": "a1"}));
    let text = router.explain(&EventFacts::new(&page, "web", Utc::now()), &()).to_string();
    assert!(text.contains("rule `payments` does not match: event `Home` matches none of"), "{text}");
    assert!(text.contains("no rule matches: taking the default route\nroute: default\ntopics: events.raw"), "{text}");
}

#[test]
fn validation_finds_bad_patterns_shadowed_rules_and_missing_topics() {
    let found = problems(
        r#"
        allowed_topics = ["events/*"]
        [[rules]]
        name = "orders"
        event = "Order *"
        topics = ["events.orders"]
        [[rules]]
        name = "completed"
        event = "Order Completed"
        type = "track"
        topics = ["events.completed"]
        [[rules]]
        name = "bad"
        type = "click"
        event = ""
        topics = ["events raw", "events.{user}"]
        [[rules]]
        name = "nameless"
        type = "identify"
        event = "X"
        topics = ["t"]
        "#,
    );
    let expect = [
        "routing: allowed_topics: `events/*` has `/`",
        "rule `completed`: can never match: rule `orders` comes first",
        "rule `bad`: unknown type `click`",
        "rule `bad`: event: empty pattern",
        "rule `bad`: topics: `events raw` has ` `",
        "rule `bad`: topics: `events.{user}` has unknown placeholder",
        "rule `nameless`: can never match: only track, page and screen events have an event name",
    ];
    for wanted in expect {
        assert!(found.iter().any(|p| p.starts_with(wanted)), "missing {wanted:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");

    let template_without_allow_list = problems("[[rules]]\ntopics = [\"events.{type}\"]");
    assert!(
        template_without_allow_list[0].contains("no allowed_topics pattern can match"),
        "{template_without_allow_list:?}"
    );

    let config: RoutingConfig = toml::from_str(PAYMENTS).expect("parses");
    let existing: HashSet<String> = ["events.raw".to_owned()].into();
    let missing: Vec<String> =
        Router::check(&config, "events.raw", &existing).iter().map(ToString::to_string).collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("topic `events.payments` (used by rule(s) payments) does not exist"), "{missing:?}");
}

#[test]
fn later_rules_that_narrow_an_earlier_one_are_fine() {
    let found = problems(
        r#"
        [[rules]]
        event = "Order Completed"
        topics = ["a"]
        [[rules]]
        event = "Order *"
        topics = ["b"]
        [[rules]]
        event = "Order *"
        source = "web"
        older_than_secs = 10
        topics = ["c"]
        [[rules]]
        topics = ["catch-all"]
        "#,
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("rule `rule 3`: can never match: rule `rule 2`"), "{found:#?}");
}

#[test]
fn a_router_says_whether_it_reads_properties() {
    assert!(!router(PAYMENTS).reads_properties());
    assert!(!Router::plain("events.raw").reads_properties());
    let present = "[[rules]]\nname = \"p\"\nproperty = \"plan\"\ntopics = [\"events.raw\"]\n";
    assert!(router(present).reads_properties());
    let keyed = "[[rules]]\nname = \"k\"\nevent = \"A\"\ntopics = [\"events.raw\"]\nkey = \"property:cart\"\n";
    assert!(router(keyed).reads_properties());
}
