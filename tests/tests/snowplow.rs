//! Snowplow's own Python tracker (`snowplow-tracker` on PyPI), unchanged, sends through its
//! POST and GET emitters to a gateway on Tansu; its events are read back from Kafka and
//! compared field by field with what the tracker was told.

use std::time::Duration;

use clickstream_tests::kafka::{create_topics, read_exactly};
use clickstream_tests::python_sdk::run_sdk_script;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, SOURCE_NAME, WRITE_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowplows_python_tracker_events_arrive_mapped_by_post_and_get() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let gateway = clickstream_gateway::start(gateway_config(&tansu.bootstrap(), &raw, &dlq)).await.expect("gateway");
    let run = unique("run");
    let (host, port) = (gateway.addr.ip().to_string(), gateway.addr.port().to_string());
    // The app id is the write key: the tracker has nowhere else to carry one.
    let args = vec![host, port, WRITE_KEY.to_owned(), run.clone()];
    run_sdk_script("Snowplow's Python tracker", "snowplow_tracker", "snowplow-python.py", args).await;

    let messages = read_exactly(&tansu.bootstrap(), &raw, 8, Duration::from_secs(30)).await;
    assert!(
        messages.iter().all(|m| m.header("protocol") == Some("snowplow") && m.header("source") == Some(SOURCE_NAME)),
        "{messages:#?}"
    );
    let find = |what: &str, test: &dyn Fn(&serde_json::Value) -> bool| {
        let found: Vec<_> = messages.iter().map(|m| &m.value).filter(|v| test(v)).collect();
        assert_eq!(found.len(), 1, "one {what} in {messages:#?}");
        found[0].clone()
    };
    let (user, duid) = (format!("user-{run}"), format!("duid-{run}"));
    for event in messages.iter().map(|m| &m.value) {
        assert_eq!((event["userId"].as_str(), event["anonymousId"].as_str()), (Some(&*user), Some(&*duid)));
        assert!(event["messageId"].as_str().is_some_and(|id| id.len() == 36), "eid is the messageId: {event}");
        assert!(event["originalTimestamp"].is_string() && event["timestamp"].is_string(), "{event}");
        assert_eq!(event["context"]["library"]["name"], "snowplow-py");
        assert_eq!(
            (event["context"]["locale"].as_str(), event["context"]["timezone"].as_str()),
            (Some("en-GB"), Some("Europe/London"))
        );
        assert_eq!(event["context"]["screen"]["width"], 1440);
        assert!(event["context"]["snowplow"].get("appId").is_none(), "the app id was the write key");
    }

    let post_page =
        find("POST page view", &|v| v["type"] == "page" && v["context"]["snowplow"]["namespace"] == "py-post");
    assert_eq!(post_page["context"]["page"]["url"], format!("https://shop.example/{run}/post"));
    assert_eq!(post_page["context"]["page"]["title"], "Post page");
    assert_eq!(post_page["properties"]["path"], format!("/{run}/post"));
    let entity = &post_page["context"]["snowplow"]["contexts"][0];
    assert_eq!(
        (entity["schema"].as_str(), entity["data"]["run"].as_str()),
        (Some("iglu:com.acme/page_type/jsonschema/1-0-0"), Some(&*run))
    );
    let coupon = find("structured event", &|v| v["event"] == "apply-coupon");
    assert_eq!(
        coupon["properties"],
        serde_json::json!({"category": "checkout", "action": "apply-coupon", "label": "SPRING", "property": "cart", "value": 12.5})
    );
    let wish = find("self-describing event", &|v| v["event"] == "wishlist_add");
    assert_eq!((wish["properties"]["sku"].as_str(), wish["properties"]["run"].as_str()), (Some("sku-1"), Some(&*run)));
    assert_eq!(wish["context"]["snowplow"]["schema"], "iglu:com.acme/wishlist_add/jsonschema/1-0-0");
    let order = find("transaction", &|v| v["event"] == "Order Completed");
    assert_eq!(order["properties"]["order_id"], format!("order-{run}"));
    assert_eq!((order["properties"]["total"].as_f64(), order["properties"]["tax"].as_f64()), (Some(42.5), Some(4.25)));
    assert_eq!(order["properties"]["currency"], "GBP");
    let item = find("transaction item", &|v| v["event"] == "Product Purchased");
    assert_eq!(
        (item["properties"]["product_id"].as_str(), item["properties"]["order_id"].as_str()),
        (Some("sku-1"), Some(&*format!("order-{run}")))
    );
    assert_eq!((item["properties"]["price"].as_f64(), item["properties"]["quantity"].as_i64()), (Some(19.75), Some(2)));

    let get_page = find("GET page view", &|v| v["type"] == "page" && v["context"]["snowplow"]["namespace"] == "py-get");
    assert_eq!(get_page["context"]["page"]["url"], format!("https://shop.example/{run}/get"));
    let opened = find("GET structured event", &|v| v["event"] == "open");
    assert_eq!(
        (opened["properties"]["category"].as_str(), opened["properties"]["label"].as_str()),
        (Some("mail"), Some(&*run))
    );
    let ping = find("GET page ping", &|v| v["event"] == "Page Ping");
    assert_eq!(
        ping["properties"],
        serde_json::json!({"minXOffset": 0, "maxXOffset": 10, "minYOffset": 20, "maxYOffset": 900})
    );
    assert_eq!(ping["timestamp"], "2023-11-14T22:13:20.123Z", "a true timestamp (ttm) stands uncorrected");
    assert!(ping["context"]["snowplow"]["sentAt"].is_string() && ping.get("sentAt").is_none());
    gateway.shutdown().await;
}
