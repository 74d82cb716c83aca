//! Each tracker protocol's events arrive enriched: a PostHog batch, a Snowplow tp2 POST and a
//! Segment pixel go through an in-process gateway on Tansu to an in-process enricher, and each
//! is read back from `events.enriched` with its mapped fields, its product joined, its user
//! agent parsed, its referrer and campaign classified and its session assigned.

use std::time::Duration;

use base64::Engine as _;
use clickstream_enricher::config::Guarantee;
use clickstream_tests::enricher::{produce_at, start_enricher, stop_enricher, EnricherTopics};
use clickstream_tests::kafka::read_exactly;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};
use serde_json::{json, Value};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const IPHONE: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

fn posthog_batch(run: &str) -> Value {
    json!({"api_key": WRITE_KEY, "batch": [{
        "event": "Product Viewed",
        "distinct_id": format!("ph-user-{run}"),
        "uuid": "0190e9d2-0000-7000-8000-0000000000a1",
        "properties": {
            "product_id": "sku-1",
            "$raw_user_agent": FIREFOX,
            "$current_url": "https://shop.example/p/sku-1?utm_source=newsletter&utm_campaign=spring",
            "$referrer": "https://www.google.com/",
        },
    }]})
}

fn snowplow_payload(run: &str) -> Value {
    let viewed = json!({"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": "iglu:com.acme/product_viewed/jsonschema/1-0-0", "data": {"product_id": "sku-1"}}});
    json!({"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": [{
        "e": "ue", "aid": WRITE_KEY, "p": "web", "tv": "js-4.1.0", "eid": "0190e9d2-0000-7000-8000-0000000000b1",
        "duid": format!("sp-visitor-{run}"), "dtm": chrono::Utc::now().timestamp_millis().to_string(),
        "url": "https://shop.example/p/sku-1", "refr": "https://www.bing.com/search?q=mug", "ua": CHROME,
        "ue_pr": viewed.to_string(),
    }]})
}

fn pixel_data(run: &str) -> String {
    let event = json!({"writeKey": WRITE_KEY, "anonymousId": format!("px-visitor-{run}"), "event": "Email Opened",
        "properties": {"product_id": "sku-1", "campaign": "spring"}});
    base64::engine::general_purpose::STANDARD.encode(event.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posthog_snowplow_and_pixel_events_arrive_enriched() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 2).await;
    let valid_from = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let mug = json!({"id": "sku-1", "name": "Mug", "price": 9.5});
    produce_at(&bootstrap, &topics.products, &[(Some("sku-1".into()), Some(mug))], valid_from);
    let enricher = start_enricher(topics.config(&bootstrap, Guarantee::ExactlyOnceIdempotent)).await;
    let gateway =
        clickstream_gateway::start(gateway_config(&bootstrap, &topics.raw, &topics.dlq)).await.expect("gateway");
    let (client, base, run) = (reqwest::Client::new(), format!("http://{}", gateway.addr), unique("run"));

    let posthog = client.post(format!("{base}/batch/")).json(&posthog_batch(&run)).send().await.expect("posthog");
    assert_eq!(posthog.status(), 200, "{:?}", posthog.text().await);
    let snowplow = client
        .post(format!("{base}/com.snowplowanalytics.snowplow/tp2"))
        .header("content-type", "application/json; charset=UTF-8")
        .body(snowplow_payload(&run).to_string())
        .send()
        .await
        .expect("snowplow");
    assert_eq!(snowplow.status(), 200, "{:?}", snowplow.text().await);
    let pixel = client
        .get(format!("{base}/v1/pixel/track"))
        .query(&[("data", pixel_data(&run))])
        .header("user-agent", IPHONE)
        .send()
        .await
        .expect("pixel");
    assert_eq!((pixel.status().as_u16(), pixel.headers()["content-type"].to_str().ok()), (200, Some("image/gif")));

    let enriched = read_exactly(&bootstrap, &topics.enriched, 3, Duration::from_secs(30)).await;
    let by_visitor = |field: &str, id: String| -> Value {
        let found = enriched.iter().find(|m| m.value[field] == id.as_str());
        found.unwrap_or_else(|| panic!("no event with {field} {id} in {enriched:#?}")).value.clone()
    };
    let from_posthog = by_visitor("userId", format!("ph-user-{run}"));
    let from_snowplow = by_visitor("anonymousId", format!("sp-visitor-{run}"));
    let from_pixel = by_visitor("anonymousId", format!("px-visitor-{run}"));

    // Mapped as the protocol tables of docs/send-from-your-tracker.md say.
    assert_eq!(
        (from_posthog["type"].as_str(), from_posthog["event"].as_str()),
        (Some("track"), Some("Product Viewed"))
    );
    assert_eq!(from_posthog["messageId"], "0190e9d2-0000-7000-8000-0000000000a1");
    assert_eq!(
        from_posthog["context"]["page"]["url"],
        "https://shop.example/p/sku-1?utm_source=newsletter&utm_campaign=spring"
    );
    assert_eq!(
        (from_snowplow["type"].as_str(), from_snowplow["event"].as_str()),
        (Some("track"), Some("product_viewed"))
    );
    assert_eq!(from_snowplow["messageId"], "0190e9d2-0000-7000-8000-0000000000b1");
    assert_eq!(from_snowplow["context"]["snowplow"]["schema"], "iglu:com.acme/product_viewed/jsonschema/1-0-0");
    assert_eq!((from_pixel["type"].as_str(), from_pixel["event"].as_str()), (Some("track"), Some("Email Opened")));
    assert_eq!(from_pixel["context"]["userAgent"], IPHONE, "the pixel's user agent is the request's");

    // Enriched like any Segment event.
    for (name, event, browser) in [
        ("posthog", &from_posthog, "Firefox"),
        ("snowplow", &from_snowplow, "Chrome"),
        ("pixel", &from_pixel, "Mobile Safari"),
    ] {
        let enrichment = &event["enrichment"];
        assert_eq!(enrichment["product"]["price"], 9.5, "{name}: {enrichment}");
        assert_eq!(enrichment["product"]["name"], "Mug", "{name}");
        assert_eq!(enrichment["userAgent"]["browser"], browser, "{name}: {enrichment}");
        assert_eq!(enrichment["session"]["sequence"], 1, "{name}: {enrichment}");
        assert!(enrichment["session"]["id"].as_str().is_some_and(|id| !id.is_empty()), "{name}: {enrichment}");
    }
    assert_eq!(from_posthog["enrichment"]["referrer"]["medium"], "search");
    assert_eq!(from_posthog["enrichment"]["referrer"]["source"], "Google");
    assert_eq!(from_posthog["enrichment"]["campaign"]["name"], "spring");
    assert_eq!(from_posthog["enrichment"]["campaign"]["source"], "newsletter");
    assert_eq!(from_snowplow["enrichment"]["referrer"]["source"], "Bing");
    assert_eq!(from_pixel["enrichment"]["userAgent"]["os"], "iOS");
    gateway.shutdown().await;
    stop_enricher(enricher).await;
}
