//! Routing of clickstream events to Kafka topics: the rule model read from config, its
//! validation, and the pure matcher that picks each event's topics and partition key. The
//! mechanism (topic metadata, hot-key limits, producing) belongs to the services that use it.

mod config;
mod explain;
mod key;
mod pattern;
mod router;
mod topic;
mod validate;

pub use config::{OverflowConfig, RoutingConfig, RuleConfig, DEFAULT_TOPIC_REFRESH_SECS};
pub use explain::{Explanation, RuleVerdict};
pub use key::{KeyStrategy, PartitionKey};
pub use pattern::Pattern;
pub use router::{Decision, EventFacts, Fallback, FallbackReason, Router, DEFAULT_ROUTE_NAME};
pub use topic::{check_topic_name, TopicTemplate};
pub use validate::{Problem, TopicExistence};
