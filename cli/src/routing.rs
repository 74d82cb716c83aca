//! `clickstream routing check`: validates the topic-routing rules of a config and explains
//! where events given on stdin would go.

use std::io::{IsTerminal as _, Read as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use clickstream_gateway::routing::TopicCatalog;
use clickstream_gateway::GatewayConfig;
use clickstream_routing::{EventFacts, Router, TopicExistence};
use clickstream_schema::Event;
use serde_json::Value;

use crate::args::RoutingCheckArgs;

pub async fn check(args: &RoutingCheckArgs) -> anyhow::Result<()> {
    let config = args.config_args().load()?;
    let raw = config.topics.raw.clone();
    let routing = config.routing.with_raw_topic(&raw);
    println!("config: {}", args.config.display());
    println!("default route: {} (key {})", routing.default_topics.join(", "), routing.default_key);
    for (index, rule) in routing.rules.iter().enumerate() {
        println!("rule {}: `{}` -> {} (key {})", index + 1, rule.display_name(index), rule.topics.join(", "), rule.key);
    }
    let topics = known_topics(&config, args.offline).await;
    let existence: &dyn TopicExistence = match &topics {
        Some(catalog) => catalog.as_ref(),
        None => &(),
    };
    let problems = Router::check(&config.routing, &raw, existence);
    if problems.is_empty() {
        println!("ok: no problems found");
    } else {
        println!("{} problem(s):", problems.len());
        for problem in &problems {
            println!("  {problem}");
        }
    }
    let events = read_events()?;
    if !events.is_empty() {
        // A shadowed rule or a missing topic does not stop the explanation; a rule that does
        // not compile does.
        let router = Router::lenient(&config.routing, &raw);
        match &router {
            Some(router) => explain(router, &config, args.source.as_deref(), &events, existence)?,
            None => println!("\nfix the problems above to see where events go"),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("the routing config has {} problem(s)", problems.len());
    }
    Ok(())
}

/// The cluster's topics, or `None` when offline or unreachable (said on stdout).
async fn known_topics(config: &GatewayConfig, offline: bool) -> Option<Arc<TopicCatalog>> {
    let servers = config.kafka.bootstrap_servers.clone();
    if offline {
        println!("topics: not checked (--offline)");
        return None;
    }
    let catalog = Arc::new(TopicCatalog::default());
    let (reader, kafka) = (catalog.clone(), config.kafka.clone());
    match tokio::task::spawn_blocking(move || reader.refresh_blocking(&kafka, Duration::from_secs(5))).await {
        Ok(Ok(count)) => {
            println!("topics: checked against {servers} ({count} topics there)");
            Some(catalog)
        }
        Ok(Err(error)) => {
            println!("topics: not checked, broker at {servers} unreachable ({error}); topic existence not checked");
            None
        }
        Err(error) => {
            println!("topics: not checked ({error})");
            None
        }
    }
}

/// Events from stdin: one object, an array, or a `{"batch": [...]}` body. Nothing when stdin
/// is a terminal or empty.
fn read_events() -> anyhow::Result<Vec<Value>> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(Vec::new());
    }
    let mut text = String::new();
    stdin.read_to_string(&mut text).context("reading events from stdin")?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(&text).context("stdin is not JSON")?;
    Ok(match value {
        Value::Array(events) => events,
        Value::Object(mut body) if body.get("batch").is_some_and(Value::is_array) => match body.remove("batch") {
            Some(Value::Array(events)) => events,
            _ => Vec::new(),
        },
        other => vec![other],
    })
}

fn explain(
    router: &Router,
    config: &GatewayConfig,
    source_flag: Option<&str>,
    events: &[Value],
    topics: &dyn TopicExistence,
) -> anyhow::Result<()> {
    for (index, value) in events.iter().enumerate() {
        let key = value.get("writeKey").and_then(Value::as_str);
        let source = source_flag
            .map(str::to_owned)
            .or_else(|| key.and_then(|k| config.sources.iter().find(|s| s.write_key == k)).map(|s| s.name.clone()))
            .or_else(|| config.sources.first().map(|s| s.name.clone()))
            .unwrap_or_default();
        let received_at = Utc::now();
        let mut event = Event::from_value(value.clone(), None)
            .map_err(|(error, _)| anyhow::anyhow!("event {} is not valid: {error}", index + 1))?;
        event.stamp(received_at, None);
        let name = event.event.as_deref().or(event.name.as_deref()).map(|n| format!(" `{n}`")).unwrap_or_default();
        println!("\nevent {}: {}{name} from source `{source}`", index + 1, event.kind.as_str());
        let explanation = router.explain(&EventFacts::new(&event, &source, received_at), topics);
        for line in explanation.to_string().lines() {
            println!("  {line}");
        }
    }
    Ok(())
}
