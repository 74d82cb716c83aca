//! Outage drills: a steady load of uniquely identified events, and the accounting that checks
//! every acknowledged event reached Kafka (no loss) and counts repeats.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use serde_json::json;
use tokio::time::Instant;

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct LoadOutcome {
    /// `messageId`s of events whose request got a 2xx.
    pub acked: HashSet<String>,
    /// Requests answered with anything else, or not answered.
    pub failed_requests: usize,
    pub requests: usize,
    /// How each request ended (status code or transport error), for diagnosis.
    pub endings: std::collections::BTreeMap<String, usize>,
}

/// Posts `total` events to `url` in batches of `batch`, spread evenly over `duration`, one
/// request at a time (open-loop pacing: a slow answer does not shift later send times).
pub async fn steady_load(
    url: &str,
    write_key: &str,
    run: &str,
    total: usize,
    batch: usize,
    duration: Duration,
) -> LoadOutcome {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("client");
    let requests = total.div_ceil(batch);
    let interval = duration / requests.max(1) as u32;
    let start = Instant::now();
    let mut outcome = LoadOutcome::default();
    for r in 0..requests {
        tokio::time::sleep_until(start + interval * r as u32).await;
        let numbers = r * batch..((r + 1) * batch).min(total);
        let ids: Vec<String> = numbers.clone().map(|n| format!("{run}-{n}")).collect();
        let events: Vec<_> = numbers
            .zip(&ids)
            .map(|(n, id)| json!({"type": "track", "event": "Drill", "anonymousId": format!("visitor-{}", n % 97), "messageId": id}))
            .collect();
        let sent = client.post(url).basic_auth(write_key, Some("")).json(&json!({"batch": events})).send().await;
        outcome.requests += 1;
        let ending = match &sent {
            Ok(response) => response.status().as_u16().to_string(),
            Err(error) if error.is_timeout() => "timeout".to_owned(),
            Err(error) if error.is_connect() => "connect-error".to_owned(),
            Err(_) => "transport-error".to_owned(),
        };
        *outcome.endings.entry(ending).or_default() += 1;
        match sent {
            Ok(response) if response.status().is_success() => outcome.acked.extend(ids),
            _ => outcome.failed_requests += 1,
        }
    }
    outcome
}

/// What Kafka holds of a run.
#[derive(Debug, Clone)]
pub struct Accounting {
    pub acked: usize,
    pub distinct_seen: usize,
    /// Acknowledged ids missing from the topic: lost events.
    pub lost: Vec<String>,
    /// Extra copies beyond the first, per the whole run.
    pub duplicates: usize,
}

/// Reads `topic` until every acked id is seen (or `timeout`), then a little longer for repeats.
pub async fn account(
    bootstrap: &str,
    topic: &str,
    run: &str,
    acked: &HashSet<String>,
    timeout: Duration,
) -> Accounting {
    let mut config = ClientConfig::new();
    if let Ok(debug) = std::env::var("DRILL_DEBUG") {
        config.set("debug", debug);
    }
    let consumer: StreamConsumer = config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique("drill-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .expect("consumer");
    crate::kafka::assign_from_beginning(&consumer, topic);
    let mut copies: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + timeout;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let until = quiet_until.unwrap_or(deadline).min(deadline);
        let Ok(message) = tokio::time::timeout_at(until, consumer.recv()).await else { break };
        let message = message.expect("consume");
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default()).expect("json");
        if let Some(id) = value["messageId"].as_str().filter(|id| id.starts_with(run)) {
            *copies.entry(id.to_owned()).or_default() += 1;
        }
        if quiet_until.is_none() && acked.iter().all(|id| copies.contains_key(id)) {
            quiet_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    let mut lost: Vec<String> = acked.iter().filter(|id| !copies.contains_key(*id)).cloned().collect();
    lost.sort();
    Accounting {
        acked: acked.len(),
        distinct_seen: copies.len(),
        lost,
        duplicates: copies.values().map(|n| n - 1).sum(),
    }
}

impl std::fmt::Display for Accounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acknowledged {} events; Kafka holds {} distinct of them; lost {}; duplicate copies {}",
            self.acked,
            self.distinct_seen,
            self.lost.len(),
            self.duplicates
        )
    }
}
