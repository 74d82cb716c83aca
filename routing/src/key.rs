//! Partition key strategies: which key (if any) a routed event is produced with.

use std::fmt;

use clickstream_schema::Event;
use serde::{Deserialize, Serialize};

/// How a route keys its events. Written in config as `visitor`, `random`, `none` or
/// `property:<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeyStrategy {
    /// `anonymousId`, else `userId`: one visitor's events stay on one partition, in order, as
    /// the enricher's sessions need.
    #[default]
    Visitor,
    /// A random partition per event, for events whose order does not matter.
    Random,
    /// The value of a top-level property (as text); no key when the event lacks it.
    Property(String),
    /// No key; the producer's partitioner chooses.
    None,
}

/// The key decided for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKey {
    Keyed(String),
    /// The producer should pick a random partition.
    Random,
    Unkeyed,
}

impl KeyStrategy {
    pub fn key_for(&self, event: &Event) -> PartitionKey {
        match self {
            Self::Visitor => event.visitor_key().map_or(PartitionKey::Unkeyed, |k| PartitionKey::Keyed(k.to_owned())),
            Self::Random => PartitionKey::Random,
            Self::None => PartitionKey::Unkeyed,
            Self::Property(name) => event
                .properties
                .as_ref()
                .and_then(|p| p.get(name))
                .and_then(crate::router::value_text)
                .map_or(PartitionKey::Unkeyed, |text| PartitionKey::Keyed(text.into_owned())),
        }
    }
}

impl fmt::Display for KeyStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Visitor => f.write_str("visitor"),
            Self::Random => f.write_str("random"),
            Self::None => f.write_str("none"),
            Self::Property(name) => write!(f, "property:{name}"),
        }
    }
}

impl TryFrom<String> for KeyStrategy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.trim() {
            "visitor" => Ok(Self::Visitor),
            "random" => Ok(Self::Random),
            "none" => Ok(Self::None),
            other => match other.strip_prefix("property:").map(str::trim) {
                Some(name) if !name.is_empty() => Ok(Self::Property(name.to_owned())),
                Some(_) => Err("key `property:` needs a property name, as in `property:order_id`".to_owned()),
                None => {
                    Err(format!("unknown key strategy `{other}`: use `visitor`, `random`, `none` or `property:<name>`"))
                }
            },
        }
    }
}

impl From<KeyStrategy> for String {
    fn from(strategy: KeyStrategy) -> Self {
        strategy.to_string()
    }
}

impl schemars::JsonSchema for KeyStrategy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "KeyStrategy".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: serde_json::Value) -> Event {
        Event::from_value(value, None).expect("valid event")
    }

    #[test]
    fn strategies_parse_print_and_pick_keys() {
        for text in ["visitor", "random", "none", "property:order_id"] {
            let strategy = KeyStrategy::try_from(text.to_owned()).expect("parses");
            assert_eq!(strategy.to_string(), text);
        }
        assert!(KeyStrategy::try_from("property:".to_owned()).is_err());
        assert!(KeyStrategy::try_from("user".to_owned()).is_err());
        let e = event(json!({"type": "track", "event": "E", "userId": "u1", "properties": {"order_id": 42}}));
        assert_eq!(KeyStrategy::Visitor.key_for(&e), PartitionKey::Keyed("u1".into()));
        assert_eq!(KeyStrategy::Property("order_id".into()).key_for(&e), PartitionKey::Keyed("42".into()));
        assert_eq!(KeyStrategy::Property("missing".into()).key_for(&e), PartitionKey::Unkeyed);
        assert_eq!(KeyStrategy::Random.key_for(&e), PartitionKey::Random);
        assert_eq!(KeyStrategy::None.key_for(&e), PartitionKey::Unkeyed);
    }
}
