//! `[tracking_plan]`: where each source's JSON Schemas live, and what a violation costs the event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tracking plans: the events each source is expected to send, as JSON Schema files checked
/// at the edge. Reloaded on SIGHUP with the sources and routing rules; see
/// docs/tracking-plans.md for the folder layout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingPlanConfig {
    /// Folder of plans: one subfolder per source, named after the source, holding one JSON
    /// Schema per track event name (`Order Completed.json`), `_identify.json`, `_page.json`
    /// and the like for the other call types, and `_default.json` for events without a file
    /// of their own. Sources without a subfolder are not checked and pay nothing. Empty (the
    /// default): no plans.
    pub dir: String,
    /// What happens to an event that violates its source's plan: `allow` (the default) keeps
    /// it and lists the violations under `context.tracking_plan`, `dlq` rejects it to the
    /// dead-letter topic with the schema path and reason, `drop` discards it (answered as
    /// accepted, and counted).
    pub action: PlanAction,
    /// Per-source actions that override `action`, as `web = "dlq"`. Default: none.
    pub actions: BTreeMap<String, PlanAction>,
}

impl TrackingPlanConfig {
    /// The action for `source`'s violations.
    pub fn action_for(&self, source: &str) -> PlanAction {
        self.actions.get(source).copied().unwrap_or(self.action)
    }
}

/// What the gateway does with an event that violates its plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    /// Keep the event and list its violations under `context.tracking_plan.violations`.
    #[default]
    Allow,
    /// Reject the event to the dead-letter topic, with the schema path and reason.
    Dlq,
    /// Discard the event; the client is answered as if it was accepted.
    Drop,
}

impl PlanAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Dlq => "dlq",
            Self::Drop => "drop",
        }
    }
}
