//! Turning config into a router, and everything that can be wrong with it: bad patterns and
//! topic names, templates no allowed pattern can admit, rules shadowed by earlier ones,
//! rules that cannot match at all, and topics the cluster does not have.

use std::collections::HashSet;
use std::fmt;

use clickstream_schema::EventType;

use crate::config::RoutingConfig;
use crate::pattern::Pattern;
use crate::router::{CompiledRule, Route, Router};
use crate::topic::{check_topic_name, TopicTemplate};

/// Whether a topic exists: `Some` when known, `None` when it cannot be told (no broker).
pub trait TopicExistence {
    fn exists(&self, topic: &str) -> Option<bool>;
}

/// No broker to ask: every topic is unknown.
impl TopicExistence for () {
    fn exists(&self, _topic: &str) -> Option<bool> {
        None
    }
}

/// A known set of topic names.
impl TopicExistence for HashSet<String> {
    fn exists(&self, topic: &str) -> Option<bool> {
        Some(self.contains(topic))
    }
}

/// One thing wrong with a routing config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The rule it is about (its display name), or `None` for the section itself.
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "rule `{rule}`: {}", self.message),
            None => write!(f, "routing: {}", self.message),
        }
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, rule: Option<&str>, message: impl Into<String>) {
        self.0.push(Problem { rule: rule.map(str::to_owned), message: message.into() });
    }
}

/// Compiles a config whose default route is already filled in; the router is `None` only
/// when some part could not be compiled at all.
pub(crate) fn compile(config: &RoutingConfig) -> (Option<Router>, Vec<Problem>) {
    let mut problems = Problems(Vec::new());
    let allowed: Vec<Pattern> = config
        .allowed_topics
        .iter()
        .filter_map(|text| match Pattern::parse(text).and_then(|p| check_allowed(text).map(|()| p)) {
            Ok(pattern) => Some(pattern),
            Err(error) => {
                problems.add(None, format!("allowed_topics: {error}"));
                None
            }
        })
        .collect();
    let mut default_topics = Vec::new();
    for name in &config.default_topics {
        match TopicTemplate::parse(name) {
            Ok(t) if !t.is_dynamic() => default_topics.push(t),
            Ok(_) => problems.add(None, format!("default_topics: `{name}` must be a fixed topic, not a template")),
            Err(error) => problems.add(None, format!("default_topics: {error}")),
        }
    }
    if config.overflow.per_key_per_sec > 0 || !config.overflow.topic.is_empty() {
        if config.overflow.topic.is_empty() || config.overflow.per_key_per_sec == 0 {
            problems.add(None, "overflow needs both `topic` and `per_key_per_sec` (leave both unset to turn it off)");
        } else if let Err(error) = check_topic_name(&config.overflow.topic) {
            problems.add(None, format!("overflow.topic: {error}"));
        }
    }
    let mut rules = Vec::new();
    for (index, rule) in config.rules.iter().enumerate() {
        let name = rule.display_name(index);
        let before = problems.0.len();
        let compiled = compile_rule(rule, name.clone(), &allowed, &mut problems);
        if problems.0.len() == before {
            rules.push(compiled);
        }
    }
    // Shadowing is judged among the rules that compiled, so one broken rule does not hide it.
    let complete = rules.len() == config.rules.len();
    shadowed(&rules, &mut problems);
    let default = Route { topics: default_topics, key: config.default_key.clone(), overflow: config.default_overflow };
    let router = complete.then(|| Router { config: config.clone(), rules, default, allowed });
    (router, problems.0)
}

fn check_allowed(text: &str) -> Result<(), String> {
    let literal: String = text.chars().filter(|c| !matches!(c, '*' | '?')).collect();
    match literal.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        Some(bad) => Err(format!("`{text}` has `{bad}`, which no topic name can hold")),
        None => Ok(()),
    }
}

fn compile_rule(
    rule: &crate::config::RuleConfig,
    name: String,
    allowed: &[Pattern],
    problems: &mut Problems,
) -> CompiledRule {
    let who = Some(name.as_str());
    let mut types = Vec::new();
    for text in &rule.types {
        match EventType::parse(text) {
            Some(kind) => types.push(kind),
            None => {
                problems.add(who, format!("unknown type `{text}`: use track, page, screen, identify, group or alias"))
            }
        }
    }
    let mut patterns = |field: &str, texts: &[String]| -> Vec<Pattern> {
        texts
            .iter()
            .filter_map(|text| match Pattern::parse(text) {
                Ok(pattern) => Some(pattern),
                Err(error) => {
                    problems.add(who, format!("{field}: {error}"));
                    None
                }
            })
            .collect()
    };
    let (event, source) = (patterns("event", &rule.event), patterns("source", &rule.source));
    if !event.is_empty() && !types.is_empty() && types.iter().all(|t| !has_name(*t)) {
        problems.add(who, "can never match: only track, page and screen events have an event name");
    }
    if rule.property.iter().chain(rule.property_equals.keys()).any(String::is_empty) {
        problems.add(who, "property names must not be empty");
    }
    if rule.topics.is_empty() {
        problems.add(who, "names no topics");
    }
    let mut topics = Vec::new();
    for text in &rule.topics {
        match TopicTemplate::parse(text) {
            Ok(template) => {
                if template.is_dynamic() && !allowed.iter().any(|p| could_admit(p, &template)) {
                    problems.add(
                        who,
                        format!("`{text}` is a template, but no allowed_topics pattern can match what it expands to"),
                    );
                }
                topics.push(template);
            }
            Err(error) => problems.add(who, format!("topics: {error}")),
        }
    }
    CompiledRule {
        name,
        types,
        event,
        source,
        property: rule.property.clone(),
        property_equals: rule.property_equals.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        older_than_secs: rule.older_than_secs,
        route: Route { topics, key: rule.key.clone(), overflow: rule.overflow },
    }
}

fn has_name(kind: EventType) -> bool {
    matches!(kind, EventType::Track | EventType::Page | EventType::Screen)
}

/// False only when no expansion of `template` can match `pattern`: their fixed beginnings
/// disagree.
fn could_admit(pattern: &Pattern, template: &TopicTemplate) -> bool {
    let fixed = template.as_str().split('{').next().unwrap_or_default();
    let text = pattern.to_string();
    let literal = text.split(['*', '?']).next().unwrap_or_default();
    let exact = matches!(pattern, Pattern::Exact(_));
    fixed.starts_with(literal) && !exact || literal.starts_with(fixed)
}

/// Reports each rule that an earlier rule makes unreachable.
fn shadowed(rules: &[CompiledRule], problems: &mut Problems) {
    for (later_index, later) in rules.iter().enumerate() {
        if let Some(earlier) = rules[..later_index].iter().find(|earlier| covers(earlier, later)) {
            problems.add(
                Some(&later.name),
                format!("can never match: rule `{}` comes first and matches every event this one would", earlier.name),
            );
        }
    }
}

/// True when every event `b` matches, `a` matches too.
fn covers(a: &CompiledRule, b: &CompiledRule) -> bool {
    let patterns = |a: &[Pattern], b: &[Pattern]| {
        a.is_empty() || (!b.is_empty() && b.iter().all(|pb| a.iter().any(|pa| pa.covers(pb))))
    };
    let types = a.types.is_empty() || (!b.types.is_empty() && b.types.iter().all(|t| a.types.contains(t)));
    let present = a.property.iter().all(|p| b.property.contains(p) || b.property_equals.iter().any(|(k, _)| k == p));
    let values = a.property_equals.iter().all(|pair| b.property_equals.contains(pair));
    let age = match (a.older_than_secs, b.older_than_secs) {
        (None, _) => true,
        (Some(x), Some(y)) => x <= y,
        (Some(_), None) => false,
    };
    types && patterns(&a.event, &b.event) && patterns(&a.source, &b.source) && present && values && age
}

/// Fixed topics that `topics` knows are missing.
pub(crate) fn missing_topics(config: &RoutingConfig, topics: &dyn TopicExistence) -> Vec<Problem> {
    let mut out = Vec::new();
    for name in config.target_topics() {
        if check_topic_name(&name).is_ok() && topics.exists(&name) == Some(false) {
            let rules: Vec<String> = config
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.topics.contains(&name))
                .map(|(i, r)| r.display_name(i))
                .collect();
            let used_by = match (rules.is_empty(), config.default_topics.contains(&name)) {
                (true, true) => "the default route".to_owned(),
                (true, false) => "overflow".to_owned(),
                (false, _) => format!("rule(s) {}", rules.join(", ")),
            };
            let message = format!("topic `{name}` (used by {used_by}) does not exist; create it with `clickstream topics apply` or your tooling");
            out.push(Problem { rule: None, message });
        }
    }
    out
}
