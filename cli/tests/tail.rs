//! `clickstream tail` against Tansu: events sent through the gateway are read back as JSON
//! lines, filtered by event name, user and source, and dead letters with their reasons.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, SOURCE_NAME, WRITE_KEY};
use serde_json::{json, Value};

/// A running `clickstream tail` whose stdout lines arrive on a channel.
struct Tail {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tail {
    /// Starts `tail ARGS` and waits until it has its partitions (it says so on stderr), so that
    /// what is sent afterwards is after its start at the end of the topic.
    fn start(bootstrap: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clickstream"))
            .args(["tail", "--kafka-brokers", bootstrap])
            .args(args)
            .env_remove("CLICKSTREAM_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("clickstream tail starts");
        let stderr = child.stderr.take().expect("stderr");
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = ready_tx.send(line);
            }
        });
        let mut said = Vec::new();
        while !said.last().is_some_and(|l: &String| l.starts_with("tail: reading")) {
            match ready.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => said.push(line),
                Err(_) => panic!("tail did not start reading within 30 s; stderr: {said:?}"),
            }
        }
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Self { child, lines }
    }

    /// The JSON lines printed until tail exits by itself (after `--count`), within `timeout`.
    fn lines_until_exit(mut self, timeout: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + timeout;
        let mut found = Vec::new();
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                Ok(line) => {
                    found.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("tail did not finish in time; printed {found:?}"),
            }
        }
        let status = self.child.wait().expect("tail exits");
        assert!(status.success(), "tail exited with {status}");
        found
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_filtered_events_and_dead_letters_as_json_lines() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 2), (&dlq, 1)]).await;
    let gateway = clickstream_gateway::start(gateway_config(&tansu.bootstrap(), &raw, &dlq)).await.expect("gateway");
    let url = format!("http://{}/v1/batch", gateway.addr);
    let marker = unique("tail");
    let wanted = format!("Wanted {marker}");

    let by_event = Tail::start(&tansu.bootstrap(), &["--topic", &raw, "--event", &wanted, "--count", "2"]);
    let by_user = Tail::start(&tansu.bootstrap(), &["--topic", &raw, "--user", "u-two", "--count", "1"]);
    let letters = Tail::start(&tansu.bootstrap(), &["--topic", &dlq, "--source", SOURCE_NAME, "--count", "1"]);
    let batch = json!({"batch": [
        {"type": "track", "event": "Other", "anonymousId": "a-other", "properties": {"n": 0}},
        {"type": "track", "event": wanted, "anonymousId": "a-one", "properties": {"n": 1}},
        {"type": "page", "name": "Home", "anonymousId": "a-page"},
        {"type": "track", "event": wanted.to_lowercase(), "userId": "u-two", "properties": {"n": 2}},
        {"type": "track", "event": "No identity"},
    ]});
    let response = reqwest::Client::new().post(&url).basic_auth(WRITE_KEY, Some("")).json(&batch).send().await;
    let response = response.expect("request");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let (mut by_event, by_user, letters) = tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(30);
        (by_event.lines_until_exit(timeout), by_user.lines_until_exit(timeout), letters.lines_until_exit(timeout))
    })
    .await
    .expect("tails");

    // Names compare without case, so both spellings pass, and nothing else does. The two are on
    // different partitions (keyed by visitor), so they may come in either order.
    by_event.sort_by_key(|line| line["value"]["properties"]["n"].as_i64());
    let numbers: Vec<&Value> = by_event.iter().map(|line| &line["value"]["properties"]["n"]).collect();
    assert_eq!(numbers, [&json!(1), &json!(2)], "{by_event:#?}");
    for line in &by_event {
        assert_eq!(line["topic"], json!(raw));
        assert_eq!(line["headers"]["source"], json!(SOURCE_NAME));
        assert_eq!(line["headers"]["event-type"], json!("track"));
        assert!(line["offset"].as_i64().is_some() && line["timestamp"].as_i64().is_some(), "{line}");
        assert!(line["value"]["messageId"].as_str().is_some_and(|id| !id.is_empty()), "edge fields: {line}");
    }
    assert_eq!(by_event[0]["value"]["anonymousId"], json!("a-one"));
    assert_eq!(by_event[0]["key"], json!("a-one"), "the record key is the visitor");
    assert_eq!(by_user.len(), 1);
    assert_eq!(by_user[0]["value"]["userId"], json!("u-two"));

    assert_eq!(letters.len(), 1);
    let letter = &letters[0]["value"];
    assert_eq!(letter["reasonKind"], json!("missing_identity"), "{letter}");
    assert_eq!(letter["payload"]["event"], json!("No identity"));
    gateway.shutdown().await;
}
