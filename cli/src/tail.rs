//! `clickstream tail`: follows a topic as an outside reader (no consumer group, no commits),
//! decodes each record, and prints it in colour on a terminal or as JSON lines when piped,
//! keeping only those that pass the console's filters.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use clickstream_gateway::console::reader::{self, Start};
use clickstream_gateway::console::summary::{Filter, Summary};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::Message as _;
use serde_json::{json, Map, Value};

use crate::args::TailArgs;

const POLL: Duration = Duration::from_millis(250);

pub async fn run(args: &TailArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let topic = args.topic.clone().unwrap_or_else(|| config.topics.raw.clone());
    let filter = Filter {
        source: args.source.clone(),
        event: args.event.clone(),
        kind: args.kind.clone(),
        user: args.user.clone(),
    };
    let start = if args.from_beginning { Start::Beginning } else { Start::End };
    let (count, colour) = (args.count, !args.json && std::io::stdout().is_terminal());
    tokio::task::spawn_blocking(move || follow(&config.kafka, &topic, start, &filter, count, colour)).await?
}

fn follow(
    kafka: &clickstream_platform::kafka::KafkaConfig,
    topic: &str,
    start: Start,
    filter: &Filter,
    count: Option<usize>,
    colour: bool,
) -> anyhow::Result<()> {
    let consumer = reader::observer(kafka).context("creating the Kafka consumer")?;
    let ends = reader::assign(&consumer, &[(topic, start)], Duration::from_secs(10))
        .with_context(|| format!("reading topic {topic} on {}", kafka.bootstrap_servers))?;
    let from = if start == Start::Beginning { "the beginning" } else { "the end" };
    eprintln!("tail: reading {topic} ({} partitions) from {from}", ends.len());
    let mut out = std::io::stdout().lock();
    let mut printed = 0;
    while count.is_none_or(|count| printed < count) {
        let Some(polled) = consumer.poll(POLL) else { continue };
        let message = polled.with_context(|| format!("reading {topic}"))?;
        let headers = headers_of(&message);
        let source = headers.get("source").and_then(Value::as_str);
        let payload = message.payload().unwrap_or_default();
        if !filter.matches(&Summary::of(payload, source)) {
            continue;
        }
        let line = if colour { pretty(&message, &headers, payload) } else { json_line(&message, &headers, payload) };
        if writeln!(out, "{line}").is_err() {
            // The reader of a pipe went away (`| head`): done, not an error.
            return Ok(());
        }
        printed += 1;
    }
    Ok(())
}

fn headers_of(message: &BorrowedMessage<'_>) -> Map<String, Value> {
    let mut map = Map::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = header.value.map(|v| String::from_utf8_lossy(v).into_owned());
            map.insert(header.key.to_owned(), value.map_or(Value::Null, Value::String));
        }
    }
    map
}

/// The payload as JSON, else as text: some topics hold no JSON.
fn decode(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
}

fn json_line(message: &BorrowedMessage<'_>, headers: &Map<String, Value>, payload: &[u8]) -> String {
    json!({
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": message.timestamp().to_millis(),
        "key": message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        "headers": headers,
        "value": decode(payload),
    })
    .to_string()
}

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// One header line (time, where, source, type, name, ids), the reason of a dead letter, and the
/// value as indented JSON with its keys coloured.
fn pretty(message: &BorrowedMessage<'_>, headers: &Map<String, Value>, payload: &[u8]) -> String {
    let summary = Summary::of(payload, headers.get("source").and_then(Value::as_str));
    let time = message
        .timestamp()
        .to_millis()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let mut line = format!(
        "{DIM}{time} {}[{}]@{}{RESET} {CYAN}{}{RESET} {} {BOLD}{}{RESET}",
        message.topic(),
        message.partition(),
        message.offset(),
        summary.source.as_deref().unwrap_or("-"),
        summary.kind.as_deref().unwrap_or("-"),
        summary.label(),
    );
    for (name, id) in [("user", &summary.user_id), ("anon", &summary.anonymous_id)] {
        if let Some(id) = id {
            line.push_str(&format!(" {DIM}{name}={RESET}{id}"));
        }
    }
    if let Some((kind, reason)) = &summary.rejection {
        line.push_str(&format!("\n  {RED}{kind}: {reason}{RESET}"));
    }
    let body = serde_json::to_string_pretty(&decode(payload)).unwrap_or_default();
    for text in body.lines() {
        line.push_str("\n  ");
        line.push_str(&colour_key(text));
    }
    line
}

/// Colours the key of a pretty-printed JSON line (`  "key": value`).
fn colour_key(text: &str) -> String {
    let indent = text.len() - text.trim_start().len();
    let rest = &text[indent..];
    match rest.strip_prefix('"').and_then(|r| r.find("\": ").map(|end| end + 1)) {
        Some(end) => format!("{}{GREEN}{}{RESET}{}", &text[..indent], &rest[..=end], &rest[end + 1..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_coloured_and_values_left_alone() {
        assert_eq!(colour_key(r#"  "event": "a: b","#), format!(r#"  {GREEN}"event"{RESET}: "a: b","#));
        assert_eq!(colour_key("  }"), "  }");
        assert_eq!(decode(b"plain"), Value::String("plain".into()));
    }
}
