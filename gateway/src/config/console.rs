//! `[console]`: the operator's console on the admin listener, and what it reads.

use serde::{Deserialize, Serialize};

/// The console at `/console` on the admin listener: live events, rejected events, rates and
/// install snippets. The admin listener is for operators; keep it off the public internet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console on the admin listener (it needs `admin.listen`).
    pub enabled: bool,
    /// A bearer token the console and its streams require, sent as `Authorization: Bearer
    /// TOKEN` or as `?token=TOKEN` (the page passes it on to its streams). Empty: no token;
    /// anyone who reaches the admin listener sees events and write keys.
    pub token: String,
    /// The enricher's output topic, whose copies the console shows beside the raw events.
    pub enriched_topic: String,
    /// The enricher's product-activity topic, for the console's top products.
    pub aggregates_topic: String,
    /// The enricher's librdkafka `group.id`, whose committed offsets on the raw topic give the
    /// enricher's lag. The console only reads them; it never joins the group.
    pub enricher_group: String,
    /// Most events a second the console forwards to browsers; the rest are counted and shown as
    /// "sampled". Rates count every event regardless.
    pub events_per_sec: u32,
}

pub const DEFAULT_CONSOLE_ENRICHED_TOPIC: &str = "events.enriched";
pub const DEFAULT_CONSOLE_AGGREGATES_TOPIC: &str = "agg.product_activity.1m";
pub const DEFAULT_CONSOLE_ENRICHER_GROUP: &str = "clickstream-enricher";
/// More than a person can read, few enough that a browser tab keeps up.
pub const DEFAULT_CONSOLE_EVENTS_PER_SEC: u32 = 200;

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            token: String::new(),
            enriched_topic: DEFAULT_CONSOLE_ENRICHED_TOPIC.to_owned(),
            aggregates_topic: DEFAULT_CONSOLE_AGGREGATES_TOPIC.to_owned(),
            enricher_group: DEFAULT_CONSOLE_ENRICHER_GROUP.to_owned(),
            events_per_sec: DEFAULT_CONSOLE_EVENTS_PER_SEC,
        }
    }
}
