//! The gateway on the embedded mock cluster, with `dev`'s broker-down switch.

use std::time::Duration;

use clickstream_platform::broker::EmbeddedBroker;
use clickstream_tests::kafka::read_exactly;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_spool_the_broker_down_switch_gives_503_then_recovers() {
    let broker = EmbeddedBroker::start(1).expect("mock cluster");
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    broker.create_topic(&raw, 2).expect("topic");
    broker.create_topic(&dlq, 1).expect("topic");
    let mut config = gateway_config(broker.bootstrap_servers(), &raw, &dlq);
    config.spool.enabled = false;
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let url = format!("http://{}", gateway.addr);
    let client = reqwest::Client::new();
    let post = |id: &str| {
        client
            .post(format!("{url}/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .json(
                &json!({"batch": [{"type": "track", "event": "Product Viewed", "anonymousId": "a1", "messageId": id}]}),
            )
            .send()
    };
    assert_eq!(post("before").await.expect("req").status(), 200);

    broker.set_available(false).expect("down");
    // Requests racing the outage may still be delivered; each 200 must then be in Kafka.
    let mut delivered_during = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        // Unique ids: a repeated id would be dropped by dedup after its first delivery.
        let response = post(&format!("during-{delivered_during}")).await.expect("req");
        if response.status() == 503 {
            assert!(response.headers().get("retry-after").is_some());
            break;
        }
        assert_eq!(response.status(), 200, "only 200 or 503 while the broker goes down");
        delivered_during += 1;
        assert!(tokio::time::Instant::now() < deadline, "no 503 within 15 s of the broker going down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(client.get(format!("{url}/readyz")).send().await.expect("req").status(), 503);

    broker.set_available(true).expect("up");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while post("after").await.expect("req").status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "gateway did not recover within 20 s of the broker coming up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(client.get(format!("{url}/readyz")).send().await.expect("req").status(), 200);

    let messages = read_exactly(broker.bootstrap_servers(), &raw, 2 + delivered_during, Duration::from_secs(20)).await;
    let ids: Vec<&str> = messages.iter().map(|m| m.value["messageId"].as_str().expect("id")).collect();
    assert!(ids.contains(&"before") && ids.contains(&"after"), "{ids:?}");
    gateway.shutdown().await;
}
