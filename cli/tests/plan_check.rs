//! The real `clickstream plan check`: the example plan in deploy/tracking-plan compiles, events
//! on stdin get their violations explained, and a plan that does not compile is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clickstream_tests::command::run_with_stdin;
use clickstream_tests::markdown::repo_root;

fn plan_check(plan: &Path, extra: &[&str], stdin: &str) -> (Output, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clickstream"));
    command.args(["plan", "check"]).arg(plan).args(extra);
    run_with_stdin(&mut command, stdin)
}

fn example_plan() -> PathBuf {
    repo_root(env!("CARGO_MANIFEST_DIR")).join("deploy/tracking-plan")
}

#[test]
fn the_example_plan_compiles_and_conforming_events_pass() {
    let events = [
        r#"{"type":"track","event":"Product Viewed","anonymousId":"a1","properties":{"product_id":"p1","price":9.5}}"#,
        r#"{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"}}"#,
        r#"{"type":"page","anonymousId":"a1","name":"Home"}"#,
    ];
    let (output, text) = plan_check(&example_plan(), &[], &events.join("\n"));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("source `website`: 4 schema(s)"), "{text}");
    assert!(text.contains("ok: every schema compiles"), "{text}");
    assert!(
        text.contains("event 1: track `Product Viewed` from source `website`: website/Product Viewed.json: ok"),
        "{text}"
    );
    assert!(text.contains("event 2: identify from source `website`: website/_identify.json: ok"), "{text}");
    assert!(text.contains("event 3: page from source `website`: website/_default.json: ok"), "{text}");
    assert!(text.contains("ok: all 3 event(s) conform"), "{text}");
}

#[test]
fn violations_are_explained_with_their_paths_and_the_exit_status_says_so() {
    let events = [
        r#"{"type":"track","event":"Order Completed","userId":"u1","properties":{"order_id":"o1","currency":"JPY","products":[{"product_id":"p1","price":"12","quantity":1}]}}"#,
        r#"{"type":"track","event":"Unplanned Thing","userId":"u1"}"#,
        r#"{"type":"identify","userId":"u1","traits":{"email":"not an address"}}"#,
        r#"{"type":"track","userId":"u1"}"#,
    ];
    let (output, text) = plan_check(&example_plan(), &["--source", "website"], &events.join("\n"));
    assert!(!output.status.success(), "{text}");
    let expected = [
        "event 1: track `Order Completed` from source `website`: website/Order Completed.json: 3 violation(s)",
        "at /properties: \"total\" is a required property",
        "schema path /properties/properties/required",
        "at /properties/currency: ",
        "schema path /properties/properties/properties/currency/enum",
        "at /properties/products/0/price: \"12\" is not of type \"number\"",
        "event 2: track `Unplanned Thing` from source `website`: website/_default.json: 1 violation(s)",
        "at the event: False schema does not allow",
        "schema path /then",
        "event 3: identify from source `website`: website/_identify.json: 1 violation(s)",
        "schema path /properties/traits/properties/email/format",
        "event 4: not a valid event, rejected before any plan",
        "4 of 4 event(s) would be rejected or flagged by the plan",
    ];
    let mut rest = text.as_str();
    for line in expected {
        let at = rest.find(line).unwrap_or_else(|| panic!("missing, in order: {line}\n{text}"));
        rest = &rest[at + line.len()..];
    }
}

#[test]
fn a_plan_that_does_not_compile_is_refused_with_each_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("web")).expect("mkdir");
    std::fs::write(dir.path().join("web/Signed Up.json"), r#"{"properties": {"plan": {"enum": "pro"}}}"#)
        .expect("write");
    std::fs::write(dir.path().join("web/_page.json"), "{ nope").expect("write");
    let (output, text) = plan_check(dir.path(), &[], "");
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("2 problem(s):"), "{text}");
    assert!(text.contains("web/Signed Up.json is not a valid JSON Schema"), "{text}");
    assert!(text.contains("web/_page.json is not JSON"), "{text}");
    assert!(text.contains("the gateway would refuse it"), "{text}");
}

#[test]
fn events_need_a_source_when_several_have_plans() {
    let dir = tempfile::tempdir().expect("tempdir");
    for source in ["web", "app"] {
        std::fs::create_dir(dir.path().join(source)).expect("mkdir");
        std::fs::write(dir.path().join(source).join("_default.json"), "true").expect("write");
    }
    let event = r#"{"type":"track","event":"X","userId":"u1"}"#;
    let (output, text) = plan_check(dir.path(), &[], event);
    assert!(
        !output.status.success() && text.contains("name the events' source with --source (one of: app, web)"),
        "{text}"
    );
    let (output, text) = plan_check(dir.path(), &["--source", "app"], event);
    assert!(output.status.success(), "{text}");
}
