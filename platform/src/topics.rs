//! Topic provisioning from a `topics.toml`: create what is missing, report drift in partition
//! counts and topic configs, and never delete, shrink or reconfigure anything.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

use crate::kafka::{topic_partitions, KafkaConfig, TopicSpec};

/// The file: one `[[topic]]` table per topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsFile {
    #[serde(default, rename = "topic")]
    pub topics: Vec<TopicDef>,
}

/// One topic as it should exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicDef {
    pub name: String,
    pub partitions: i32,
    #[serde(default = "one")]
    pub replication: i32,
    /// Kafka `cleanup.policy`: `delete`, `compact`, or `compact,delete`.
    #[serde(default = "delete")]
    pub cleanup_policy: String,
    /// Kafka `retention.ms`; -1 keeps forever. Unset: the broker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<i64>,
    /// Any other topic config, by its Kafka name (`min.insync.replicas`, `segment.ms`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

fn one() -> i32 {
    1
}
fn delete() -> String {
    "delete".to_owned()
}

impl TopicsFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: Self = toml::from_str(text)?;
        for topic in &file.topics {
            anyhow::ensure!(!topic.name.is_empty(), "a topic has an empty name");
            anyhow::ensure!(topic.partitions > 0, "topic {} needs at least one partition", topic.name);
            anyhow::ensure!(topic.replication > 0, "topic {} needs a replication factor of at least 1", topic.name);
        }
        Ok(file)
    }
}

impl TopicDef {
    /// Every topic config this definition sets, by Kafka name.
    pub fn configs(&self) -> BTreeMap<String, String> {
        let mut configs = self.config.clone();
        configs.insert("cleanup.policy".to_owned(), self.cleanup_policy.clone());
        if let Some(retention) = self.retention_ms {
            configs.insert("retention.ms".to_owned(), retention.to_string());
        }
        configs
    }
}

impl From<&TopicSpec> for TopicDef {
    fn from(spec: &TopicSpec) -> Self {
        Self {
            name: spec.name.clone(),
            partitions: spec.partitions,
            replication: spec.replication,
            cleanup_policy: spec.cleanup_policy.clone(),
            retention_ms: None,
            config: BTreeMap::new(),
        }
    }
}

/// What `apply` found or did for one topic; a topic can have several drift outcomes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TopicOutcome {
    Created,
    /// The topic exists as defined (as far as the broker can tell).
    Exists,
    /// The topic exists with fewer partitions than configured; nothing is changed.
    FewerPartitions {
        actual: usize,
        wanted: i32,
    },
    /// The topic exists with more partitions than configured; nothing is changed (Kafka
    /// cannot shrink a topic, and keyed order would break if it could).
    MorePartitions {
        actual: usize,
        wanted: i32,
    },
    /// A topic config differs from the definition; nothing is changed.
    ConfigDrift {
        key: String,
        actual: String,
        wanted: String,
    },
    /// The broker would not describe the topic's configs, so config drift was not checked.
    ConfigUnchecked {
        reason: String,
    },
}

impl TopicOutcome {
    /// Whether the outcome means the cluster differs from the definition.
    pub fn is_drift(&self) -> bool {
        matches!(self, Self::FewerPartitions { .. } | Self::ConfigDrift { .. })
    }
}

/// Creates the missing topics with their configs; reports drift on the others.
pub async fn apply(
    config: &KafkaConfig,
    defs: &[TopicDef],
    timeout: Duration,
) -> anyhow::Result<Vec<(String, TopicOutcome)>> {
    let admin: AdminClient<DefaultClientContext> = AdminClient::from_config(&config.client_config(&[]))?;
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    let existing = topic_partitions(admin.inner(), &names, timeout)?;
    let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let mut outcomes = Vec::new();
    let mut to_create = Vec::new();
    let mut to_describe = Vec::new();
    for def in defs {
        match existing.get(&def.name).copied().flatten() {
            None => to_create.push(def),
            Some(actual) => {
                let wanted = def.partitions;
                if (actual as i32) < wanted {
                    outcomes.push((def.name.clone(), TopicOutcome::FewerPartitions { actual, wanted }));
                } else if (actual as i32) > wanted {
                    outcomes.push((def.name.clone(), TopicOutcome::MorePartitions { actual, wanted }));
                }
                to_describe.push(def);
            }
        }
    }
    if !to_create.is_empty() {
        let configs: Vec<BTreeMap<String, String>> = to_create.iter().map(|d| d.configs()).collect();
        let new_topics: Vec<NewTopic> = to_create
            .iter()
            .zip(&configs)
            .map(|(d, configs)| {
                configs.iter().fold(
                    NewTopic::new(&d.name, d.partitions, TopicReplication::Fixed(d.replication)),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        for result in admin.create_topics(&new_topics, &options).await? {
            match result {
                Ok(name) => outcomes.push((name, TopicOutcome::Created)),
                // Created meanwhile by someone else: check it like any existing topic.
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    to_describe.extend(to_create.iter().copied().filter(|d| d.name == name));
                }
                Err((name, code)) => anyhow::bail!("creating topic {name} failed: {code}"),
            }
        }
    }
    outcomes.extend(config_drift(&admin, &to_describe, &options).await);
    for def in &to_describe {
        if !outcomes.iter().any(|(name, _)| name == &def.name) {
            outcomes.push((def.name.clone(), TopicOutcome::Exists));
        }
    }
    Ok(outcomes)
}

/// Compares each topic's described configs with its definition.
async fn config_drift(
    admin: &AdminClient<DefaultClientContext>,
    defs: &[&TopicDef],
    options: &AdminOptions,
) -> Vec<(String, TopicOutcome)> {
    if defs.is_empty() {
        return Vec::new();
    }
    let resources: Vec<ResourceSpecifier<'_>> = defs.iter().map(|d| ResourceSpecifier::Topic(&d.name)).collect();
    let described = match admin.describe_configs(&resources, options).await {
        Ok(described) => described,
        Err(error) => {
            let reason = format!("DescribeConfigs failed: {error}");
            return defs
                .iter()
                .map(|d| (d.name.clone(), TopicOutcome::ConfigUnchecked { reason: reason.clone() }))
                .collect();
        }
    };
    let mut outcomes = Vec::new();
    for (def, result) in defs.iter().zip(described) {
        let resource = match result {
            Ok(resource) if !resource.entries.is_empty() => resource,
            Ok(_) => {
                let reason = "the broker described no configs".to_owned();
                outcomes.push((def.name.clone(), TopicOutcome::ConfigUnchecked { reason }));
                continue;
            }
            Err(code) => {
                let reason = format!("DescribeConfigs answered {code}");
                outcomes.push((def.name.clone(), TopicOutcome::ConfigUnchecked { reason }));
                continue;
            }
        };
        for (key, wanted) in def.configs() {
            let actual = resource.get(&key).and_then(|e| e.value.clone()).unwrap_or_default();
            if normalized(&key, &actual) != normalized(&key, &wanted) {
                outcomes.push((def.name.clone(), TopicOutcome::ConfigDrift { key, actual, wanted }));
            }
        }
    }
    outcomes
}

/// `cleanup.policy` is a set: `delete,compact` equals `compact,delete`.
fn normalized(key: &str, value: &str) -> String {
    if key != "cleanup.policy" {
        return value.trim().to_owned();
    }
    let mut parts: Vec<&str> = value.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    parts.sort_unstable();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_passthrough_configs() {
        let file = TopicsFile::parse(
            "[[topic]]\nname = \"events.raw\"\npartitions = 12\nreplication = 3\nretention_ms = 604800000\n\
             [topic.config]\n\"min.insync.replicas\" = \"2\"\n\
             [[topic]]\nname = \"products\"\npartitions = 1\ncleanup_policy = \"compact\"\n",
        )
        .expect("parse");
        let raw = &file.topics[0];
        assert_eq!((raw.partitions, raw.replication, raw.cleanup_policy.as_str()), (12, 3, "delete"));
        let configs = raw.configs();
        assert_eq!(configs["retention.ms"], "604800000");
        assert_eq!(configs["min.insync.replicas"], "2");
        assert_eq!(configs["cleanup.policy"], "delete");
        assert_eq!(file.topics[1].replication, 1);
        assert_eq!(file.topics[1].configs()["cleanup.policy"], "compact");
        assert!(!file.topics[1].configs().contains_key("retention.ms"));
    }

    #[test]
    fn rejects_bad_definitions() {
        assert!(TopicsFile::parse("[[topic]]\nname = \"x\"\npartitions = 0\n").is_err());
        assert!(TopicsFile::parse("[[topic]]\nname = \"x\"\npartitions = 1\nretention = 5\n").is_err());
    }
}
