//! Reading a tracking-plan folder and compiling each of its JSON Schemas once, with every
//! problem found reported together.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use clickstream_schema::EventType;

use super::{PlanSchema, Plans, SourcePlan};
use crate::config::TrackingPlanConfig;

/// The file that applies to events without a schema of their own.
pub const DEFAULT_SCHEMA: &str = "_default";
/// The file that applies to track events without a schema of their own, before `_default`.
pub const TRACK_SCHEMA: &str = "_track";

/// One thing wrong with a plan folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanProblem {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not JSON: {reason}")]
    NotJson { path: String, reason: String },
    #[error("{path} is not a valid JSON Schema: {reason}{}", at(.schema_path))]
    InvalidSchema { path: String, reason: String, schema_path: String },
    #[error("{path}: {reason}")]
    Layout { path: String, reason: String },
}

fn at(schema_path: &str) -> String {
    if schema_path.is_empty() {
        String::new()
    } else {
        format!(" (at {schema_path})")
    }
}

/// A plan folder that does not compile, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tracking plan (check it with `clickstream plan check`):{}", list(.0))]
pub struct InvalidPlan(pub Vec<PlanProblem>);

fn list(problems: &[PlanProblem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Compiles every source's plan under `config.dir`; nothing when `dir` is empty.
pub fn compile(config: &TrackingPlanConfig) -> Result<Plans, InvalidPlan> {
    if config.dir.is_empty() {
        return Ok(Plans::default());
    }
    let root = Path::new(&config.dir);
    let mut problems = Vec::new();
    let mut sources = HashMap::new();
    for entry in visible_entries(root, &mut problems) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let schemas = compile_source(&path, &name, &mut problems);
            let plan = SourcePlan::new(schemas, config.action_for(&name));
            sources.insert(name, Arc::new(plan));
        } else if name.ends_with(".json") {
            problems.push(PlanProblem::Layout {
                path: path.display().to_string(),
                reason: "schemas go in a subfolder named after their source, such as web/".into(),
            });
        }
    }
    if problems.is_empty() {
        Ok(Plans { sources })
    } else {
        Err(InvalidPlan(problems))
    }
}

/// Entries of `dir`, sorted, without hidden ones (a Kubernetes ConfigMap mount keeps its
/// real files in `..data`).
fn visible_entries(dir: &Path, problems: &mut Vec<PlanProblem>) -> Vec<std::fs::DirEntry> {
    let read = std::fs::read_dir(dir).and_then(|entries| entries.collect::<Result<Vec<_>, _>>());
    match read {
        Ok(mut entries) => {
            entries.retain(|e| !e.file_name().to_string_lossy().starts_with('.'));
            entries.sort_by_key(std::fs::DirEntry::file_name);
            entries
        }
        Err(error) => {
            problems.push(PlanProblem::Read { path: dir.display().to_string(), reason: error.to_string() });
            Vec::new()
        }
    }
}

/// The schemas of one source folder, by file stem.
fn compile_source(dir: &Path, source: &str, problems: &mut Vec<PlanProblem>) -> HashMap<String, Arc<PlanSchema>> {
    let mut schemas = HashMap::new();
    for entry in visible_entries(dir, problems) {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".json") else { continue };
        let path = entry.path();
        let shown = format!("{source}/{file}");
        if let Some(reason) = reserved_name_problem(stem) {
            problems.push(PlanProblem::Layout { path: path.display().to_string(), reason });
            continue;
        }
        match compile_file(&path, &shown) {
            Ok(validator) => {
                let label = metric_label(stem);
                schemas.insert(stem.to_owned(), Arc::new(PlanSchema { file: shown, label, validator }));
            }
            Err(problem) => problems.push(problem),
        }
    }
    schemas
}

/// Names starting with `_` are kept for the fallbacks and the call types.
fn reserved_name_problem(stem: &str) -> Option<String> {
    let reserved = stem.strip_prefix('_')?;
    let known = stem == DEFAULT_SCHEMA || EventType::parse(reserved).is_some();
    (!known).then(|| {
        format!("names starting with `_` are reserved: use _default.json, or _track.json, _identify.json, _page.json, _screen.json, _group.json or _alias.json, not _{reserved}.json")
    })
}

/// The event label of a schema's violation counts: the event it names, or `other` for the
/// fallbacks, so labels stay as few as the plan's files.
fn metric_label(stem: &str) -> Arc<str> {
    match stem {
        DEFAULT_SCHEMA | TRACK_SCHEMA => Arc::from("other"),
        named => Arc::from(named),
    }
}

fn compile_file(path: &Path, shown: &str) -> Result<jsonschema::Validator, PlanProblem> {
    let bytes =
        std::fs::read(path).map_err(|error| PlanProblem::Read { path: shown.to_owned(), reason: error.to_string() })?;
    let schema: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|error| PlanProblem::NotJson { path: shown.to_owned(), reason: error.to_string() })?;
    jsonschema::options().should_validate_formats(true).build(&schema).map_err(|error| PlanProblem::InvalidSchema {
        path: shown.to_owned(),
        reason: error.to_string(),
        schema_path: error.instance_path().to_string(),
    })
}

/// The schema file an event of `kind` named `name` is checked against: its own, else the one
/// for its call type, else `_default`.
pub(super) fn lookup<'p>(
    schemas: &'p HashMap<String, Arc<PlanSchema>>,
    kind: EventType,
    name: Option<&str>,
) -> Option<&'p Arc<PlanSchema>> {
    let own = match kind {
        EventType::Track => name.filter(|n| !n.starts_with('_')).and_then(|n| schemas.get(n)),
        _ => None,
    };
    own.or_else(|| match kind {
        EventType::Track => schemas.get(TRACK_SCHEMA),
        EventType::Identify => schemas.get("_identify"),
        EventType::Page => schemas.get("_page"),
        EventType::Screen => schemas.get("_screen"),
        EventType::Group => schemas.get("_group"),
        EventType::Alias => schemas.get("_alias"),
    })
    .or_else(|| schemas.get(DEFAULT_SCHEMA))
}
