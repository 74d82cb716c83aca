//! `clickstream dev --kafka-brokers` against a freshly started Tansu, with no other step: it
//! creates every topic it uses (the gateway's and the enricher's), serves, and its demo comes
//! back enriched; a second `dev` on the same broker reuses the topics and reports drift
//! without failing.

use std::collections::HashSet;
use std::time::Duration;

use clickstream_tests::dev::DevProcess;
use clickstream_tests::kafka::{read_until, ReadBack};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::PIPELINE_TOPICS;

const DEMO_DONE: &str = "demo: every event came back enriched from Kafka. Ctrl-C stops dev.";

/// Starts `dev` on `bootstrap`, waits for its demo to end, and returns it with the number of
/// events the demo posted (from its `POST /v1/batch with N events -> 200` line).
fn dev_with_demo(bootstrap: &str, extra: &[&str]) -> (DevProcess, usize) {
    let mut args = vec!["--kafka-brokers", bootstrap];
    args.extend_from_slice(extra);
    let mut dev = DevProcess::start(env!("CARGO_BIN_EXE_clickstream"), &args);
    let posted = dev.wait_for("the demo batch", Duration::from_secs(60), |l| l.contains("demo: POST /v1/batch with"));
    assert!(posted.contains("-> 200"), "demo batch not accepted: {posted}");
    let count = posted.split("with ").nth(1).and_then(|rest| rest.split_whitespace().next());
    let count = count.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no event count in {posted:?}"));
    dev.wait_for("the demo's read-back", Duration::from_secs(60), |l| {
        l.contains("demo: every event") || l.contains("demo failed")
    });
    assert!(dev.has_printed(DEMO_DONE), "{}", dev.output());
    (dev, count)
}

fn distinct_ids(records: &[ReadBack]) -> usize {
    records.iter().filter_map(|r| r.value["messageId"].as_str()).collect::<HashSet<_>>().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_creates_every_topic_on_a_fresh_broker_then_reuses_them() {
    let tansu = Tansu::start_in_memory();
    let bootstrap = tansu.bootstrap();

    let (first, posted) = dev_with_demo(&bootstrap, &[]);
    for topic in PIPELINE_TOPICS {
        assert!(
            first.has_printed(&format!("created  {topic}")),
            "dev did not report creating {topic}:\n{}",
            first.output()
        );
    }
    // Ctrl-C, as a user would before running dev again: its enricher leaves the group.
    first.stop();

    // Read back from the broker ourselves, not only the demo's word for it.
    let enriched =
        read_until(&bootstrap, "events.enriched", Duration::from_secs(30), |m| distinct_ids(m) >= posted).await;
    for record in &enriched {
        let enrichment = &record.value["enrichment"];
        assert!(enrichment["session"]["id"].is_string(), "no session on {}", record.value);
        if record.value["event"] == "Product Viewed" {
            assert!(enrichment["product"]["name"].is_string(), "product not joined on {}", record.value);
        }
    }

    // More partitions wanted than the topics have: drift, reported and left alone.
    let (second, posted_again) = dev_with_demo(&bootstrap, &["--set", "topics.partitions=12"]);
    let drift = "DRIFT    events.raw: 6 partitions, config wants 12 (left unchanged)";
    assert!(second.has_printed(drift), "{}", second.output());
    assert!(second.has_printed("exists   products"), "{}", second.output());
    assert!(!second.printed.iter().any(|l| l.starts_with("created")), "nothing new to create:\n{}", second.output());
    let total = posted + posted_again;
    // The second demo's visitor is new, so its events add to the first's.
    read_until(&bootstrap, "events.enriched", Duration::from_secs(30), |m| distinct_ids(m) >= total).await;
}
