//! The `[routing]` config section: ordered rules, the default route, the allow-list for
//! dynamic topic names, and hot-key overflow.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::key::KeyStrategy;

/// How often the gateway refreshes its cached list of the cluster's topics, in seconds.
pub const DEFAULT_TOPIC_REFRESH_SECS: u64 = 30;

/// Where each accepted event goes. With no rules, every event goes to the default route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Topics of the default route, taken by events no rule matches and by events whose
    /// dynamic topic is not allowed or does not exist. Empty: `topics.raw`.
    pub default_topics: Vec<String>,
    /// Partition key of the default route: `visitor` (anonymousId, else userId), `random`,
    /// `property:<name>` or `none`.
    pub default_key: KeyStrategy,
    /// Whether hot keys on the default route go to the overflow topic.
    pub default_overflow: bool,
    /// Patterns (`*` any run, `?` one character) that a dynamic topic name such as
    /// `events.{source}` must match once expanded. Empty: no dynamic topic is allowed.
    pub allowed_topics: Vec<String>,
    /// Seconds between refreshes of the cached topic list that dynamic topics are checked
    /// against. Topics are never created.
    pub topic_refresh_secs: u64,
    /// Hot-key overflow: a key sending faster than this goes to its own topic.
    pub overflow: OverflowConfig,
    /// Rules, tried in order; the first that matches decides. File only.
    pub rules: Vec<RuleConfig>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            default_topics: Vec::new(),
            default_key: KeyStrategy::Visitor,
            default_overflow: true,
            allowed_topics: Vec::new(),
            topic_refresh_secs: DEFAULT_TOPIC_REFRESH_SECS,
            overflow: OverflowConfig::default(),
            rules: Vec::new(),
        }
    }
}

/// Hot-key overflow: so that one noisy visitor or bot cannot make a hot partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OverflowConfig {
    /// Topic that takes a hot key's events, each on a random partition. Empty: overflow off.
    pub topic: String,
    /// Events per second one partition key may send before its events overflow. 0: off.
    pub per_key_per_sec: u32,
    /// Events one key may send at once above its rate before overflowing (at least the rate).
    pub burst: u32,
}

impl OverflowConfig {
    /// Overflow needs both a topic and a rate.
    pub fn enabled(&self) -> bool {
        !self.topic.is_empty() && self.per_key_per_sec > 0
    }
}

/// One routing rule: conditions that must all hold, and the route they choose. A rule
/// without conditions matches every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name shown by `routing check` and in logs. Empty: `rule N`.
    #[serde(default)]
    pub name: String,
    /// Event types that match (`track`, `page`, ...), one or a list.
    #[serde(default, rename = "type", deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub types: Vec<String>,
    /// Event name patterns: exact (`Order Completed`), prefix (`Order *`) or glob
    /// (`*Completed`, `Checkout Step ?`). The name is `event` for track, `name` for page and
    /// screen; other types have none and never match.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub event: Vec<String>,
    /// Source name patterns (the name of the write key's source).
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub source: Vec<String>,
    /// Properties that must be present and not null.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub property: Vec<String>,
    /// Properties that must have these values. A string property compares as is, a number or
    /// boolean as its JSON text (`"19.99"`, `"true"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub property_equals: BTreeMap<String, String>,
    /// Matches events whose `timestamp` (after skew correction) is at least this many seconds
    /// before they were received: historical imports and replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_secs: Option<u64>,
    /// Topics the event goes to (several: a copy to each). A name may be a template with
    /// `{source}`, `{type}` or `{event}`, whose expansion must match `allowed_topics` and exist.
    pub topics: Vec<String>,
    /// Partition key: `visitor` (default), `random`, `property:<name>` or `none`.
    #[serde(default)]
    pub key: KeyStrategy,
    /// Whether hot keys on this route go to the overflow topic.
    #[serde(default = "overflow_on")]
    pub overflow: bool,
}

fn overflow_on() -> bool {
    true
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            types: Vec::new(),
            event: Vec::new(),
            source: Vec::new(),
            property: Vec::new(),
            property_equals: BTreeMap::new(),
            older_than_secs: None,
            topics: Vec::new(),
            key: KeyStrategy::Visitor,
            overflow: overflow_on(),
        }
    }
}

impl RuleConfig {
    /// The name to show: the configured one, else `rule N` (1-based).
    pub fn display_name(&self, index: usize) -> String {
        if self.name.is_empty() {
            format!("rule {}", index + 1)
        } else {
            self.name.clone()
        }
    }
}

impl RoutingConfig {
    /// This config with an empty default route filled in with `raw_topic`, the topic every
    /// event went to before routing existed.
    pub fn with_raw_topic(&self, raw_topic: &str) -> Self {
        let mut resolved = self.clone();
        if resolved.default_topics.is_empty() {
            resolved.default_topics = vec![raw_topic.to_owned()];
        }
        resolved
    }

    /// Every fixed topic an event can be produced to: the default route's, each rule's
    /// non-template topics, and the overflow topic. Consumers (such as the enricher) can read
    /// these. Call it on `with_raw_topic(..)` so the default route is included.
    pub fn target_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        let mut add = |name: &str| {
            if !crate::topic::is_template(name) && !topics.iter().any(|t| t == name) {
                topics.push(name.to_owned());
            }
        };
        self.default_topics.iter().for_each(|t| add(t));
        self.rules.iter().flat_map(|r| &r.topics).for_each(|t| add(t));
        if self.overflow.enabled() {
            add(&self.overflow.topic);
        }
        topics
    }

    /// The allow-list patterns that dynamic topic names are checked against; every topic a
    /// template can produce to matches one of them.
    pub fn dynamic_topic_patterns(&self) -> Vec<String> {
        self.allowed_topics.clone()
    }
}

/// `x = "a"` or `x = ["a", "b"]`.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_from_toml_with_single_values_or_lists() {
        let config: RoutingConfig = toml::from_str(
            r#"
            allowed_topics = ["events.*"]
            [[rules]]
            name = "payments"
            event = ["Order Completed", "Payment *"]
            topics = ["events.payments", "events.raw"]
            overflow = false
            [[rules]]
            type = "page"
            key = "property:path"
            topics = ["events.{type}"]
            "#,
        )
        .expect("parses");
        assert_eq!(config.rules[0].event, ["Order Completed", "Payment *"]);
        assert!(!config.rules[0].overflow);
        assert_eq!(config.rules[1].types, ["page"]);
        assert_eq!(config.rules[1].key, KeyStrategy::Property("path".into()));
        assert!(config.rules[1].overflow, "overflow is on unless turned off");
        assert_eq!(config.default_key, KeyStrategy::Visitor);
    }

    #[test]
    fn target_topics_lists_fixed_topics_once_and_skips_templates() {
        let mut config = RoutingConfig::default().with_raw_topic("events.raw");
        config.rules.push(RuleConfig {
            topics: vec!["events.payments".into(), "events.raw".into(), "events.{source}".into()],
            ..RuleConfig::default()
        });
        config.overflow = OverflowConfig { topic: "events.overflow".into(), per_key_per_sec: 10, burst: 0 };
        config.allowed_topics = vec!["events.*".into()];
        assert_eq!(config.target_topics(), ["events.raw", "events.payments", "events.overflow"]);
        assert_eq!(config.dynamic_topic_patterns(), ["events.*"]);
    }
}
