//! Explaining a routing decision in words: which rules were tried, which condition decided
//! each, and where the event goes. `clickstream routing check` prints this.

use std::fmt;

use crate::key::PartitionKey;
use crate::pattern::Pattern;
use crate::router::{event_name, value_text, CompiledRule, Condition, Decision, EventFacts, Router};
use crate::validate::TopicExistence;

/// The outcome of one rule for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleVerdict {
    pub name: String,
    pub matched: bool,
    /// For a match, every condition that held; otherwise the one that failed.
    pub reasons: Vec<String>,
}

/// Every rule tried, in order, and the decision.
#[derive(Debug, Clone)]
pub struct Explanation<'r> {
    pub verdicts: Vec<RuleVerdict>,
    pub decision: Decision<'r>,
    /// The overflow topic and per-key rate, when overflow is configured.
    pub overflow: Option<(String, u32)>,
}

impl Router {
    /// Routes the event as [`Router::route`] does, and says why.
    pub fn explain<'r>(&'r self, facts: &EventFacts<'_>, topics: &dyn TopicExistence) -> Explanation<'r> {
        let decision = self.route(facts, topics);
        let tried = decision.rule.or(decision.fallback.as_ref().map(|f| f.rule)).map_or(self.rules.len(), |i| i + 1);
        let verdicts = self.rules[..tried]
            .iter()
            .map(|rule| match rule.first_mismatch(facts) {
                Some(failed) => RuleVerdict {
                    name: rule.name.clone(),
                    matched: false,
                    reasons: vec![describe(rule, failed, facts, false)],
                },
                None => {
                    let mut reasons: Vec<String> =
                        rule.conditions().into_iter().map(|c| describe(rule, c, facts, true)).collect();
                    if reasons.is_empty() {
                        reasons.push("it has no conditions, so it matches every event".to_owned());
                    }
                    RuleVerdict { name: rule.name.clone(), matched: true, reasons }
                }
            })
            .collect();
        let overflow = &self.config.overflow;
        let overflow = overflow.enabled().then(|| (overflow.topic.clone(), overflow.per_key_per_sec));
        Explanation { verdicts, decision, overflow }
    }
}

fn list(patterns: &[Pattern]) -> String {
    patterns.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
}

fn describe(rule: &CompiledRule, condition: Condition, facts: &EventFacts<'_>, held: bool) -> String {
    let event = facts.event;
    let property = |name: &str| event.properties.as_ref().and_then(|p| p.get(name));
    match condition {
        Condition::Type => {
            let wanted: Vec<&str> = rule.types.iter().map(|t| t.as_str()).collect();
            let verb = if held { "is" } else { "is not" };
            format!("type `{}` {verb} one of {}", event.kind.as_str(), wanted.join(", "))
        }
        Condition::Event => match event_name(event) {
            Some(name) if held => format!("event `{name}` matches one of {}", list(&rule.event)),
            Some(name) => format!("event `{name}` matches none of {}", list(&rule.event)),
            None => format!("a {} event has no event name to match {}", event.kind.as_str(), list(&rule.event)),
        },
        Condition::Source => {
            let verb = if held { "matches one of" } else { "matches none of" };
            format!("source `{}` {verb} {}", facts.source, list(&rule.source))
        }
        Condition::Property(i) => {
            let name = &rule.property[i];
            if held {
                format!("property `{name}` is present")
            } else {
                format!("property `{name}` is missing or null")
            }
        }
        Condition::PropertyEquals(i) => {
            let (name, wanted) = &rule.property_equals[i];
            match property(name).and_then(value_text) {
                Some(actual) if held => format!("property `{name}` is `{actual}`"),
                Some(actual) => format!("property `{name}` is `{actual}`, not `{wanted}`"),
                None => format!("property `{name}` is missing, so it is not `{wanted}`"),
            }
        }
        Condition::Age => {
            let min = rule.older_than_secs.unwrap_or_default();
            match facts.age_secs {
                Some(age) if held => format!("the event is {age} s old, at least {min} s"),
                Some(age) => format!("the event is {age} s old, less than {min} s"),
                None => "the event has no timestamp to tell its age".to_owned(),
            }
        }
    }
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for verdict in &self.verdicts {
            let outcome = if verdict.matched { "matches" } else { "does not match" };
            writeln!(f, "rule `{}` {outcome}: {}", verdict.name, verdict.reasons.join("; "))?;
        }
        let decision = &self.decision;
        if let Some(fallback) = &decision.fallback {
            writeln!(f, "its route cannot be used: {fallback}; taking the default route instead")?;
        } else if decision.rule.is_none() {
            writeln!(f, "no rule matches: taking the default route")?;
        }
        let key = match &decision.key {
            PartitionKey::Keyed(key) => format!("`{key}`"),
            PartitionKey::Random => "none, a random partition".to_owned(),
            PartitionKey::Unkeyed => "none (the producer picks the partition)".to_owned(),
        };
        writeln!(f, "route: {}", decision.rule_name)?;
        writeln!(f, "topics: {}", decision.topics.join(", "))?;
        writeln!(f, "key: {key}")?;
        match (&self.overflow, decision.overflow) {
            (None, _) => write!(f, "hot-key overflow: not configured"),
            (Some(_), false) => write!(f, "hot-key overflow: off for this route"),
            (Some((topic, rate)), true) => write!(f, "hot-key overflow: a key above {rate}/s goes to `{topic}`"),
        }
    }
}
