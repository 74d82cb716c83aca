//! The console's endpoints against Tansu: the bearer token, the live stream with a filter, and
//! the rates read back from Kafka.

use std::time::Duration;

use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, SOURCE_NAME, WRITE_KEY};
use serde_json::{json, Value};

const TOKEN: &str = "console-secret";

/// Reads an event stream until a `raw` event whose value has `message_id`; returns the events
/// (name, data) read until then.
async fn read_until(response: &mut reqwest::Response, message_id: &str) -> Vec<(String, Value)> {
    let (mut text, mut events) = (String::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        let chunk = chunk.unwrap_or_else(|_| panic!("no event for {message_id} in 20 s; got {events:?}"));
        text.push_str(&String::from_utf8_lossy(&chunk.expect("stream").expect("stream still open")));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default().to_owned();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            let data: Value = serde_json::from_str(data).expect("data is JSON");
            let done = name == "raw" && data["value"]["messageId"] == json!(message_id);
            events.push((name, data));
            if done {
                return events;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_streams_filtered_events_and_counts_them_behind_its_token() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 2), (&dlq, 1)]).await;
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.console.token = TOKEN.into();
    // No enricher here: its topics are missing, and the console reads the others without them.
    config.console.enriched_topic = unique("events.enriched");
    let gateway = clickstream_gateway::start(config).await.expect("gateway");
    let console = format!("http://{}/console", gateway.admin_addr.expect("admin listener"));
    let client = reqwest::Client::new();

    let refused = client.get(&console).send().await.expect("request");
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(client.get(format!("{console}/stats?token=wrong")).send().await.expect("request").status(), 401);
    let page = client.get(&console).bearer_auth(TOKEN).send().await.expect("request");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("page").contains("<title>clickstream console</title>"));

    let wanted = unique("Wanted");
    let url = format!("{console}/events?token={TOKEN}&event={}", wanted.replace(' ', "%20"));
    let mut stream = client.get(&url).send().await.expect("stream");
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let id = |n: u32| format!("{wanted}-{n}");
    let batch = json!({"batch": [
        {"type": "track", "event": "Other", "anonymousId": "a1", "messageId": id(0)},
        {"type": "track", "event": wanted, "anonymousId": "a2", "messageId": id(1)},
    ]});
    // Sent at once: whether the reader has its partitions yet or not, the stream shows these,
    // live or as the recent records it starts with.
    let sent = client.post(format!("http://{}/v1/batch", gateway.addr)).basic_auth(WRITE_KEY, Some("")).json(&batch);
    assert_eq!(sent.send().await.expect("batch").status(), 200);

    let events = read_until(&mut stream, &id(1)).await;
    let raw_events: Vec<&Value> = events.iter().filter(|(name, _)| name == "raw").map(|(_, data)| data).collect();
    assert_eq!(raw_events.len(), 1, "only the wanted event passes the filter: {events:?}");
    let shown = raw_events[0];
    assert_eq!(shown["topic"], json!(raw));
    assert_eq!(shown["source"], json!(SOURCE_NAME));
    assert_eq!(shown["value"]["event"], json!(wanted));
    assert_eq!(shown["value"]["context"]["ip"], "127.0.0.1", "the event as the gateway wrote it");

    let stats: Value = client
        .get(format!("{console}/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["reading"], true, "{stats}");
    let series = stats["rates"]["series"].as_array().expect("series");
    for name in ["Other", wanted.as_str()] {
        let found = series.iter().find(|s| s["name"] == json!(name) && s["source"] == json!(SOURCE_NAME));
        let count: u64 =
            found.map_or(0, |s| s["perMinute"].as_array().expect("present").iter().filter_map(Value::as_u64).sum());
        assert_eq!(count, 1, "{name} counted once in {stats}");
    }
    assert_eq!(stats["counters"]["accepted"], 2, "{stats}");
    let sources: Value = client
        .get(format!("{console}/sources?token={TOKEN}"))
        .send()
        .await
        .expect("sources")
        .json()
        .await
        .expect("json");
    assert_eq!(sources["sources"][0]["writeKey"], WRITE_KEY);
    assert_eq!(sources["gateway"], json!(format!("http://{}", gateway.addr)));
    drop(stream);
    gateway.shutdown().await;
}
