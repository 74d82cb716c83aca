//! Tracking plans at the edge: each source's JSON Schemas, compiled once, swapped whole on
//! reload, and checked against the events of sources that have one. Sources without a plan
//! skip all of it: a request asks once, and an atomic flag answers when no plan exists at all.

mod apply;
mod load;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use clickstream_schema::EventType;
use serde_json::{json, Value};

pub use apply::{apply, PlanOutcome, VIOLATION_KIND};
pub use load::{compile, InvalidPlan, PlanProblem, DEFAULT_SCHEMA, TRACK_SCHEMA};

use crate::config::PlanAction;

/// At most this many violations are listed per event: enough to fix it, and a bound on what an
/// event grows by under `allow`.
pub const MAX_LISTED_VIOLATIONS: usize = 10;

/// Most bytes of a violation's message or path that are kept. Messages quote the offending
/// value and paths name the client's keys, either up to the event size limit; ten such
/// quotes per event, in every listed rejection of a response and in each dead letter, would
/// multiply what one request costs.
pub const MAX_QUOTED_BYTES: usize = 200;

/// `text` cut to [`MAX_QUOTED_BYTES`] at a character boundary, saying how long it was.
fn shortened(mut text: String) -> String {
    if text.len() > MAX_QUOTED_BYTES {
        let length = text.len();
        text.truncate(clickstream_schema::text_prefix(&text, MAX_QUOTED_BYTES).len());
        text.push_str(&format!("… ({length} bytes)"));
    }
    text
}

/// One compiled schema file.
pub struct PlanSchema {
    /// `source/file.json`, as violations and dead letters name it.
    pub file: String,
    /// The `event` label of its violation counts (bounded by the plan's files).
    pub label: Arc<str>,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for PlanSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanSchema").field("file", &self.file).finish_non_exhaustive()
    }
}

impl PlanSchema {
    /// The violations of `event`, or `None` when it conforms.
    pub fn check(&self, event: &Value) -> Option<Verdict<'_>> {
        if self.validator.is_valid(event) {
            return None;
        }
        let mut violations = Vec::new();
        let mut total = 0;
        for error in self.validator.iter_errors(event) {
            total += 1;
            if violations.len() < MAX_LISTED_VIOLATIONS {
                violations.push(Violation {
                    path: shortened(error.instance_path().to_string()),
                    schema_path: error.schema_path().to_string(),
                    message: shortened(error.to_string()),
                });
            }
        }
        Some(Verdict { schema: self, violations, total })
    }
}

/// One way an event breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON Pointer to the offending value in the event (empty: the event itself).
    pub path: String,
    /// JSON Pointer to the keyword of the schema that failed.
    pub schema_path: String,
    pub message: String,
}

/// An event's violations of one schema.
#[derive(Debug)]
pub struct Verdict<'p> {
    pub schema: &'p PlanSchema,
    /// The first [`MAX_LISTED_VIOLATIONS`].
    pub violations: Vec<Violation>,
    /// How many there were in all.
    pub total: usize,
}

impl Verdict<'_> {
    /// One line for the dead-letter topic and the client's per-event rejection.
    pub fn reason(&self) -> String {
        let listed: Vec<String> = self
            .violations
            .iter()
            .map(|v| {
                let at = if v.path.is_empty() { String::new() } else { format!("at {}: ", v.path) };
                format!("{at}{} (schema path {})", v.message, v.schema_path)
            })
            .collect();
        let more = self.total.saturating_sub(self.violations.len());
        let more = if more > 0 { format!("; and {more} more") } else { String::new() };
        format!("violates tracking plan {}: {}{more}", self.schema.file, listed.join("; "))
    }

    /// What `allow` writes under `context.tracking_plan`.
    pub fn to_json(&self) -> Value {
        json!({"schema": self.schema.file, "violations": self.violations, "violation_count": self.total})
    }
}

/// One source's plan: its schemas by file stem, and what a violation does.
#[derive(Debug)]
pub struct SourcePlan {
    schemas: HashMap<String, Arc<PlanSchema>>,
    pub action: PlanAction,
}

impl SourcePlan {
    fn new(schemas: HashMap<String, Arc<PlanSchema>>, action: PlanAction) -> Self {
        Self { schemas, action }
    }

    /// The schema an event of `kind` named `name` is checked against, if the plan has one.
    pub fn schema_for(&self, kind: EventType, name: Option<&str>) -> Option<&PlanSchema> {
        load::lookup(&self.schemas, kind, name).map(Arc::as_ref)
    }

    /// The plan's files (by stem), sorted.
    pub fn files(&self) -> Vec<&str> {
        let mut files: Vec<&str> = self.schemas.values().map(|s| s.file.as_str()).collect();
        files.sort_unstable();
        files
    }
}

/// Every source's plan, as compiled from one folder.
#[derive(Debug, Default)]
pub struct Plans {
    sources: HashMap<String, Arc<SourcePlan>>,
}

impl Plans {
    pub fn source(&self, name: &str) -> Option<&Arc<SourcePlan>> {
        self.sources.get(name)
    }

    /// Source names with a plan, sorted.
    pub fn source_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.sources.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// The plans in force, shared by every request.
#[derive(Debug, Default)]
pub struct TrackingPlans {
    active: RwLock<Arc<Plans>>,
    /// Whether any source has a plan: read without the lock on every request.
    any: AtomicBool,
}

impl TrackingPlans {
    pub fn new(plans: Plans) -> Self {
        let tracking = Self::default();
        tracking.replace(plans);
        tracking
    }

    /// Puts `plans` in force for the requests that start from now on.
    pub fn replace(&self, plans: Plans) {
        let any = !plans.is_empty();
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(plans);
        self.any.store(any, Ordering::Release);
    }

    /// The plan of `source`, held by a request for all its events.
    pub fn for_source(&self, source: &str) -> Option<Arc<SourcePlan>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        self.active.read().unwrap_or_else(|p| p.into_inner()).source(source).cloned()
    }

    /// Source names with a plan now, sorted.
    pub fn sources(&self) -> Vec<String> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner()).clone();
        active.source_names().into_iter().map(str::to_owned).collect()
    }
}

/// Adds `verdict` under `context.tracking_plan` of a written event, replacing any the client
/// sent (the edge owns that field). Only events with violations pay for this re-encoding.
pub fn annotate(payload: &[u8], verdict: &Verdict<'_>) -> Option<Vec<u8>> {
    let mut event: serde_json::Map<String, Value> = serde_json::from_slice(payload).ok()?;
    let context = event.entry("context").or_insert_with(|| json!({}));
    if !context.is_object() {
        *context = json!({});
    }
    context.as_object_mut()?.insert("tracking_plan".to_owned(), verdict.to_json());
    serde_json::to_vec(&event).ok()
}

#[cfg(test)]
mod tests;
