//! The matcher: compiled rules tried in order, first match wins, with the default route for
//! everything else and for dynamic topics that are not allowed or do not exist.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use clickstream_schema::{Event, EventType};
use serde_json::Value;

use crate::config::RoutingConfig;
use crate::key::{KeyStrategy, PartitionKey};
use crate::pattern::Pattern;
use crate::topic::TopicTemplate;
use crate::validate::{Problem, TopicExistence};

/// Name of the route taken when no rule matches.
pub const DEFAULT_ROUTE_NAME: &str = "default";

/// What the matcher looks at in one event.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub event: &'a Event,
    /// The name of the source whose write key sent the event.
    pub source: &'a str,
    /// Seconds between the event's `timestamp` and its arrival; `None` without a timestamp.
    pub age_secs: Option<i64>,
}

impl<'a> EventFacts<'a> {
    pub fn new(event: &'a Event, source: &'a str, received_at: DateTime<Utc>) -> Self {
        let age_secs = event.timestamp.map(|t| (received_at - t).num_seconds());
        Self { event, source, age_secs }
    }
}

/// A route: where matching events go and how they are keyed.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub topics: Vec<TopicTemplate>,
    pub key: KeyStrategy,
    pub overflow: bool,
}

/// One condition of a rule, named so that explanations can say which one held or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    Type,
    Event,
    Source,
    Property(usize),
    PropertyEquals(usize),
    Age,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub name: String,
    pub types: Vec<EventType>,
    pub event: Vec<Pattern>,
    pub source: Vec<Pattern>,
    pub property: Vec<String>,
    pub property_equals: Vec<(String, String)>,
    pub older_than_secs: Option<u64>,
    pub route: Route,
}

impl CompiledRule {
    /// The conditions this rule sets, in the order they are checked.
    pub fn conditions(&self) -> Vec<Condition> {
        let mut out = Vec::new();
        if !self.types.is_empty() {
            out.push(Condition::Type);
        }
        if !self.event.is_empty() {
            out.push(Condition::Event);
        }
        if !self.source.is_empty() {
            out.push(Condition::Source);
        }
        out.extend((0..self.property.len()).map(Condition::Property));
        out.extend((0..self.property_equals.len()).map(Condition::PropertyEquals));
        if self.older_than_secs.is_some() {
            out.push(Condition::Age);
        }
        out
    }

    pub fn holds(&self, condition: Condition, facts: &EventFacts<'_>) -> bool {
        let property = |name: &str| facts.event.properties.as_ref().and_then(|p| p.get(name));
        match condition {
            Condition::Type => self.types.contains(&facts.event.kind),
            Condition::Event => event_name(facts.event).is_some_and(|name| self.event.iter().any(|p| p.matches(name))),
            Condition::Source => self.source.iter().any(|p| p.matches(facts.source)),
            Condition::Property(i) => property(&self.property[i]).is_some_and(|v| !v.is_null()),
            Condition::PropertyEquals(i) => {
                let (name, wanted) = &self.property_equals[i];
                property(name).and_then(value_text).is_some_and(|text| text == wanted.as_str())
            }
            Condition::Age => {
                facts.age_secs.zip(self.older_than_secs).is_some_and(|(age, min)| age >= 0 && age as u64 >= min)
            }
        }
    }

    /// The first condition that fails, if any; checked without allocating on the hot path.
    pub fn first_mismatch(&self, facts: &EventFacts<'_>) -> Option<Condition> {
        let checks = [
            (!self.types.is_empty()).then_some(Condition::Type),
            (!self.event.is_empty()).then_some(Condition::Event),
            (!self.source.is_empty()).then_some(Condition::Source),
        ];
        if let Some(failed) = checks.into_iter().flatten().find(|c| !self.holds(*c, facts)) {
            return Some(failed);
        }
        let properties = (0..self.property.len()).map(Condition::Property);
        let values = (0..self.property_equals.len()).map(Condition::PropertyEquals);
        let age = self.older_than_secs.map(|_| Condition::Age);
        properties.chain(values).chain(age).find(|c| !self.holds(*c, facts))
    }
}

/// The name a rule's `event` patterns are matched against.
pub(crate) fn event_name(event: &Event) -> Option<&str> {
    match event.kind {
        EventType::Track => event.event.as_deref(),
        EventType::Page | EventType::Screen => event.name.as_deref(),
        _ => None,
    }
}

/// A property value as text: strings as they are, numbers and booleans as JSON.
pub(crate) fn value_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(_) | Value::Bool(_) => Some(Cow::Owned(value.to_string())),
        _ => None,
    }
}

/// Why a matched rule's dynamic topic was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackReason {
    /// The event has no value for this placeholder (an identify has no `{event}`).
    NoValue(&'static str),
    /// The expanded name matches no `allowed_topics` pattern.
    NotAllowed(String),
    /// The expanded name is allowed, but the cluster has no such topic.
    Missing(String),
}

/// A matched rule whose route could not be used, so the default route was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub rule: usize,
    pub template: String,
    pub reason: FallbackReason,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let template = &self.template;
        match &self.reason {
            FallbackReason::NoValue(field) => write!(f, "`{template}`: the event has no {field}"),
            FallbackReason::NotAllowed(name) => {
                write!(f, "`{template}` gives `{name}`, which no allowed_topics pattern matches")
            }
            FallbackReason::Missing(name) => write!(f, "`{template}` gives `{name}`, which does not exist"),
        }
    }
}

/// Where one event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'r> {
    /// Index of the rule that decided; `None` for the default route.
    pub rule: Option<usize>,
    pub rule_name: &'r str,
    /// Topics to produce a copy to, in order, each once.
    pub topics: Vec<String>,
    pub key: PartitionKey,
    /// Whether hot-key overflow applies to this route.
    pub overflow: bool,
    /// Set when a rule matched but its dynamic topic could not be used.
    pub fallback: Option<Fallback>,
}

/// Compiled routing config.
#[derive(Debug, Clone)]
pub struct Router {
    pub(crate) config: RoutingConfig,
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) default: Route,
    pub(crate) allowed: Vec<Pattern>,
}

impl Router {
    /// Compiles `config` with `raw_topic` as the default route when it names none. Refuses a
    /// config with problems (bad patterns, shadowed rules, ...); see [`Router::check`].
    pub fn new(config: &RoutingConfig, raw_topic: &str) -> Result<Self, Vec<Problem>> {
        let (router, problems) = crate::validate::compile(&config.with_raw_topic(raw_topic));
        match router {
            Some(router) if problems.is_empty() => Ok(router),
            _ => Err(problems),
        }
    }

    /// Compiles `config` even when it has problems that do not stop routing (a shadowed rule
    /// just never matches); `None` when some rule cannot be compiled at all. For explaining.
    pub fn lenient(config: &RoutingConfig, raw_topic: &str) -> Option<Self> {
        crate::validate::compile(&config.with_raw_topic(raw_topic)).0
    }

    /// The router of a config without rules: every event to `raw_topic`, keyed by visitor.
    /// Unlike [`Router::new`], it cannot fail.
    pub fn plain(raw_topic: &str) -> Self {
        let config = RoutingConfig::default().with_raw_topic(raw_topic);
        let default =
            Route { topics: vec![TopicTemplate::fixed(raw_topic)], key: KeyStrategy::Visitor, overflow: true };
        Self { config, rules: Vec::new(), default, allowed: Vec::new() }
    }

    /// Every problem in `config`, including topics `topics` says do not exist.
    pub fn check(config: &RoutingConfig, raw_topic: &str, topics: &dyn TopicExistence) -> Vec<Problem> {
        let resolved = config.with_raw_topic(raw_topic);
        let (_, mut problems) = crate::validate::compile(&resolved);
        problems.extend(crate::validate::missing_topics(&resolved, topics));
        problems
    }

    /// The config it was compiled from, with the default route filled in.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Whether the router needs the cluster's topic list: for dynamic topics, random
    /// partitions, or overflow.
    pub fn needs_topic_metadata(&self) -> bool {
        let routes = self.rules.iter().map(|r| &r.route).chain([&self.default]);
        self.config.overflow.enabled()
            || routes.clone().any(|r| r.key == KeyStrategy::Random)
            || routes.flat_map(|r| &r.topics).any(TopicTemplate::is_dynamic)
    }

    /// Whether any rule or partition key reads the event's `properties`; when none does, a
    /// caller may route an event whose properties it has not built.
    pub fn reads_properties(&self) -> bool {
        let mut routes = self.rules.iter().map(|r| &r.route).chain([&self.default]);
        self.rules.iter().any(|r| !r.property.is_empty() || !r.property_equals.is_empty())
            || routes.any(|r| matches!(r.key, KeyStrategy::Property(_)))
    }

    /// Picks the topics and key of one event. `topics` answers whether a dynamic topic
    /// exists; `None` (unknown) lets it through.
    pub fn route<'r>(&'r self, facts: &EventFacts<'_>, topics: &dyn TopicExistence) -> Decision<'r> {
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.first_mismatch(facts).is_some() {
                continue;
            }
            return match self.expand(&rule.route, facts, topics) {
                Ok(names) => Decision {
                    rule: Some(index),
                    rule_name: &rule.name,
                    topics: names,
                    key: rule.route.key.key_for(facts.event),
                    overflow: rule.route.overflow,
                    fallback: None,
                },
                Err((template, reason)) => {
                    let fallback = Fallback { rule: index, template: template.to_owned(), reason };
                    Decision { fallback: Some(fallback), ..self.default_decision(facts) }
                }
            };
        }
        self.default_decision(facts)
    }

    fn default_decision(&self, facts: &EventFacts<'_>) -> Decision<'_> {
        Decision {
            rule: None,
            rule_name: DEFAULT_ROUTE_NAME,
            topics: self.default.topics.iter().map(|t| t.as_str().to_owned()).collect(),
            key: self.default.key.key_for(facts.event),
            overflow: self.default.overflow,
            fallback: None,
        }
    }

    fn expand<'t>(
        &self,
        route: &'t Route,
        facts: &EventFacts<'_>,
        topics: &dyn TopicExistence,
    ) -> Result<Vec<String>, (&'t str, FallbackReason)> {
        let mut names: Vec<String> = Vec::with_capacity(route.topics.len());
        for template in &route.topics {
            let name = if template.is_dynamic() {
                let name = template
                    .expand(facts.event, facts.source)
                    .map_err(|field| (template.as_str(), FallbackReason::NoValue(field.name())))?;
                if !self.allowed.iter().any(|p| p.matches(&name)) {
                    return Err((template.as_str(), FallbackReason::NotAllowed(name)));
                }
                if topics.exists(&name) == Some(false) {
                    return Err((template.as_str(), FallbackReason::Missing(name)));
                }
                name
            } else {
                template.as_str().to_owned()
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
}
