//! A source's plan applied to one event of a request: pass, annotate, reject or drop.

use clickstream_schema::CheckedEvent;
use serde_json::Value;

use super::{SourcePlan, Verdict};
use crate::config::PlanAction;
use crate::error::RejectedItem;
use crate::metrics::Metrics;

/// The per-event rejection code, in the client's answer, the dead letter and the metrics.
pub const VIOLATION_KIND: &str = "tracking_plan_violation";

/// What the ingest path does with an event after its plan was checked.
#[derive(Debug)]
pub enum PlanOutcome<'p> {
    /// No schema applies, or the event conforms.
    Pass,
    /// `allow`: keep the event, with these violations written under `context.tracking_plan`.
    Annotate(Verdict<'p>),
    /// `dlq`: reject the event, with the event as sent for the dead-letter topic.
    Reject(RejectedItem, Value),
    /// `drop`: discard the event.
    Drop,
}

/// Checks `event` (at `index` in its request) against `plan` and counts a violation.
pub fn apply<'p>(
    plan: &'p SourcePlan,
    source: &str,
    event: &CheckedEvent<'_>,
    index: usize,
    metrics: &Metrics,
) -> PlanOutcome<'p> {
    let Some(schema) = plan.schema_for(event.kind(), event.event_name().as_deref()) else {
        return PlanOutcome::Pass;
    };
    let mut value = event.to_value();
    // The endpoint may imply the type (`/v1/track`); a schema can rely on it all the same.
    if let Value::Object(members) = &mut value {
        members.entry("type").or_insert_with(|| Value::from(event.kind().as_str()));
    }
    let Some(verdict) = schema.check(&value) else {
        return PlanOutcome::Pass;
    };
    metrics.plan_violation(source, &schema.label, plan.action.as_str());
    match plan.action {
        PlanAction::Allow => PlanOutcome::Annotate(verdict),
        PlanAction::Dlq => {
            PlanOutcome::Reject(RejectedItem { index, kind: VIOLATION_KIND, reason: verdict.reason() }, value)
        }
        PlanAction::Drop => PlanOutcome::Drop,
    }
}
