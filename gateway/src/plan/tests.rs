//! Unit tests of plan compilation, schema lookup and violation reports.

use serde_json::json;

use super::*;
use crate::config::TrackingPlanConfig;

fn write(dir: &std::path::Path, file: &str, schema: &Value) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, serde_json::to_vec(schema).expect("json")).expect("write");
}

fn config(dir: &std::path::Path) -> TrackingPlanConfig {
    TrackingPlanConfig { dir: dir.display().to_string(), ..Default::default() }
}

fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["properties"],
        "properties": {"properties": {
            "type": "object",
            "required": ["order_id", "total"],
            "properties": {
                "order_id": {"type": "string"},
                "total": {"type": "number"},
                "currency": {"enum": ["USD", "EUR"]},
                "products": {"type": "array", "items": {"type": "object", "properties": {"price": {"type": "number"}}}}
            }
        }}
    })
}

#[test]
fn events_find_their_own_schema_then_the_call_type_then_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "web/Order Completed.json", &order_schema());
    write(dir.path(), "web/_identify.json", &json!({"required": ["traits"]}));
    write(dir.path(), "web/_default.json", &json!(true));
    let plans = compile(&config(dir.path())).expect("compiles");
    assert_eq!(plans.source_names(), ["web"]);
    let web = plans.source("web").expect("web plan");
    let file = |kind, name| web.schema_for(kind, name).map(|s| s.file.as_str());
    assert_eq!(file(EventType::Track, Some("Order Completed")), Some("web/Order Completed.json"));
    assert_eq!(file(EventType::Track, Some("Signed Up")), Some("web/_default.json"));
    assert_eq!(file(EventType::Track, Some("_identify")), Some("web/_default.json"), "reserved names are not events");
    assert_eq!(file(EventType::Identify, None), Some("web/_identify.json"));
    assert_eq!(file(EventType::Page, None), Some("web/_default.json"));
    assert_eq!(
        web.schema_for(EventType::Track, Some("Order Completed")).expect("own").label.as_ref(),
        "Order Completed"
    );
    assert_eq!(web.schema_for(EventType::Track, Some("x")).expect("default").label.as_ref(), "other");
}

#[test]
fn nested_types_required_properties_and_enums_are_reported_with_their_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "web/Order Completed.json", &order_schema());
    let plans = compile(&config(dir.path())).expect("compiles");
    let schema = plans.source("web").and_then(|p| p.schema_for(EventType::Track, Some("Order Completed")));
    let schema = schema.expect("schema");
    let good = json!({"event": "Order Completed", "properties": {"order_id": "o1", "total": 5, "currency": "EUR"}});
    assert!(schema.check(&good).is_none());
    let bad = json!({"event": "Order Completed", "properties": {
        "order_id": "o1", "currency": "GBP", "products": [{"price": "12"}]
    }});
    let verdict = schema.check(&bad).expect("violations");
    let found: Vec<(&str, &str)> =
        verdict.violations.iter().map(|v| (v.path.as_str(), v.schema_path.as_str())).collect();
    assert!(found.contains(&("/properties", "/properties/properties/required")), "{found:?}");
    assert!(found.contains(&("/properties/currency", "/properties/properties/properties/currency/enum")), "{found:?}");
    assert!(
        found.contains(&(
            "/properties/products/0/price",
            "/properties/properties/properties/products/items/properties/price/type"
        )),
        "{found:?}"
    );
    assert_eq!(verdict.total, 3);
    let reason = verdict.reason();
    assert!(reason.starts_with("violates tracking plan web/Order Completed.json: "), "{reason}");
    assert!(reason.contains("\"total\" is a required property"), "{reason}");
}

#[test]
fn violations_quote_at_most_a_bounded_part_of_the_clients_values_and_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "web/Order Completed.json", &order_schema());
    let plans = compile(&config(dir.path())).expect("compiles");
    let schema = plans.source("web").and_then(|p| p.schema_for(EventType::Track, Some("Order Completed")));
    let schema = schema.expect("schema");
    let long = "é".repeat(16_000);
    let bad = json!({"event": "Order Completed", "properties": {
        "order_id": "o1", "total": long, "products": {long.clone(): 1}, "currency": "GBP"
    }});
    let verdict = schema.check(&bad).expect("violations");
    assert_eq!(verdict.total, 3, "{:?}", verdict.violations);
    for violation in &verdict.violations {
        assert!(violation.message.len() <= MAX_QUOTED_BYTES + 20, "{} bytes", violation.message.len());
        assert!(violation.path.len() <= MAX_QUOTED_BYTES + 20, "{} bytes", violation.path.len());
    }
    let total = verdict.violations.iter().find(|v| v.path == "/properties/total").expect("the total's violation");
    assert!(total.message.starts_with("\"éé"), "{}", total.message);
    let said: usize = total
        .message
        .rsplit("… (")
        .next()
        .and_then(|n| n.strip_suffix(" bytes)"))
        .map_or(0, |n| n.parse().expect("a length"));
    assert!(said > 32_000, "{}", total.message);
    assert!(verdict.reason().len() < 1_000, "{}", verdict.reason().len());
}

#[test]
fn a_schema_that_does_not_compile_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "web/Bad Type.json", &json!({"properties": {"price": {"type": "nombre"}}}));
    write(dir.path(), "web/_unknown.json", &json!(true));
    std::fs::write(dir.path().join("web/Not Json.json"), "{").expect("write");
    write(dir.path(), "stray.json", &json!(true));
    let InvalidPlan(problems) = compile(&config(dir.path())).expect_err("refused");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 4, "{text:#?}");
    assert!(text.iter().any(|p| p.starts_with("web/Bad Type.json is not a valid JSON Schema")), "{text:#?}");
    assert!(text.iter().any(|p| p.contains("/properties/price/type")), "names where: {text:#?}");
    assert!(text.iter().any(|p| p.starts_with("web/Not Json.json is not JSON")), "{text:#?}");
    assert!(text.iter().any(|p| p.contains("_unknown.json") && p.contains("reserved")), "{text:#?}");
    assert!(text.iter().any(|p| p.contains("stray.json") && p.contains("subfolder")), "{text:#?}");
}

#[test]
fn no_folder_means_no_plans_and_a_missing_folder_is_refused() {
    let none = compile(&TrackingPlanConfig::default()).expect("empty dir setting");
    assert!(none.is_empty());
    let tracking = TrackingPlans::new(none);
    assert!(tracking.for_source("web").is_none());
    let missing = TrackingPlanConfig { dir: "/nonexistent/plans".into(), ..Default::default() };
    assert!(matches!(compile(&missing), Err(InvalidPlan(p)) if matches!(p[0], PlanProblem::Read { .. })));
}

#[test]
fn actions_are_per_source_and_annotate_replaces_the_clients_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "web/_default.json", &json!({"required": ["userId"]}));
    write(dir.path(), "app/_default.json", &json!(true));
    let mut config = config(dir.path());
    config.action = PlanAction::Dlq;
    config.actions.insert("app".into(), PlanAction::Drop);
    let tracking = TrackingPlans::new(compile(&config).expect("compiles"));
    assert_eq!(tracking.for_source("web").expect("web").action, PlanAction::Dlq);
    assert_eq!(tracking.for_source("app").expect("app").action, PlanAction::Drop);
    assert!(tracking.for_source("other").is_none());
    let web = tracking.for_source("web").expect("web");
    let verdict = web.schema_for(EventType::Track, Some("x")).and_then(|s| s.check(&json!({}))).expect("violation");
    let payload = br#"{"event":"x","context":{"tracking_plan":"forged","ip":"1.2.3.4"}}"#;
    let annotated: Value = serde_json::from_slice(&annotate(payload, &verdict).expect("annotated")).expect("json");
    assert_eq!(annotated["context"]["ip"], "1.2.3.4");
    assert_eq!(annotated["context"]["tracking_plan"]["schema"], "web/_default.json");
    assert_eq!(annotated["context"]["tracking_plan"]["violations"][0]["schema_path"], "/required");
}
