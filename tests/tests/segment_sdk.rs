//! A real Segment SDK (`@segment/analytics-node`) pointed at the gateway, read back from Tansu.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use clickstream_tests::kafka::{create_topics, read_exactly};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_node_events_arrive_unchanged() {
    let dir = sdk_dir();
    assert!(
        dir.join("node_modules/@segment/analytics-node").is_dir(),
        "the Segment SDK is not installed: run `npm ci --prefix tests/sdk` (needs Node.js 18+), or ./scripts/test, which installs it"
    );
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let gateway = clickstream_gateway::start(gateway_config(&tansu.bootstrap(), &raw, &dlq)).await.expect("gateway");
    let run_id = unique("run");
    let host = format!("http://{}", gateway.addr);
    let output = tokio::task::spawn_blocking({
        let (dir, run_id) = (dir.clone(), run_id.clone());
        move || Command::new("node").arg(dir.join("segment-node.mjs")).args([&host, WRITE_KEY, &run_id]).output()
    })
    .await
    .expect("join")
    .expect("node runs (install Node.js 18+)");
    assert!(
        output.status.success(),
        "SDK script failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let messages = read_exactly(&tansu.bootstrap(), &raw, 4, Duration::from_secs(30)).await;
    let by_type = |kind: &str| {
        messages.iter().find(|m| m.value["type"] == kind).unwrap_or_else(|| panic!("no {kind} in {messages:#?}"))
    };
    let identify = by_type("identify");
    assert_eq!(identify.value["userId"], format!("user-{run_id}"));
    assert_eq!(identify.value["traits"]["email"], "sdk@example.com");
    assert_eq!(identify.key.as_deref(), Some(format!("user-{run_id}").as_str()));
    let track = by_type("track");
    assert_eq!(track.value["anonymousId"], format!("anon-{run_id}"));
    assert_eq!(track.value["event"], "Product Viewed");
    assert_eq!(track.value["properties"]["product_id"], "p1");
    assert_eq!(track.value["properties"]["price"], 12.5);
    assert_eq!(track.value["context"]["library"]["name"], "@segment/analytics-node");
    assert!(
        track.value["messageId"].as_str().is_some_and(|id| id.starts_with("node-next-")),
        "the SDK's messageId is kept"
    );
    assert!(track.value.get("writeKey").is_none(), "the body's writeKey is stripped");
    assert!(track.value["_metadata"].is_object(), "SDK metadata is preserved");
    assert!(track.value["sentAt"].is_string() && track.value["receivedAt"].is_string());
    assert_eq!(by_type("page").value["name"], "Home");
    assert_eq!(by_type("group").value["groupId"], format!("g-{run_id}"));
    gateway.shutdown().await;
}
