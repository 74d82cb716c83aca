//! `clickstream plan check`: compiles a tracking-plan folder as the gateway would, and explains
//! the violations of events given on stdin as JSON lines.

use std::io::{IsTerminal as _, Read as _};

use anyhow::Context as _;
use clickstream_gateway::config::TrackingPlanConfig;
use clickstream_gateway::plan::{compile, Plans};
use clickstream_schema::Event;
use serde_json::Value;

use crate::args::PlanCheckArgs;

pub fn check(args: &PlanCheckArgs) -> anyhow::Result<()> {
    let config = TrackingPlanConfig { dir: args.plan.display().to_string(), ..Default::default() };
    println!("plan: {}", args.plan.display());
    let plans = match compile(&config) {
        Ok(plans) => plans,
        Err(invalid) => {
            println!("{} problem(s):", invalid.0.len());
            for problem in &invalid.0 {
                println!("  {problem}");
            }
            anyhow::bail!("the tracking plan has {} problem(s); the gateway would refuse it", invalid.0.len());
        }
    };
    for name in plans.source_names() {
        let files = plans.source(name).map(|p| p.files()).unwrap_or_default();
        println!("source `{name}`: {} schema(s): {}", files.len(), files.join(", "));
    }
    if plans.is_empty() {
        println!("no source subfolders: no event would be checked");
    } else {
        println!("ok: every schema compiles");
    }
    let events = read_lines()?;
    if events.is_empty() {
        return Ok(());
    }
    let source = pick_source(&plans, args.source.as_deref())?;
    let mut failing = 0;
    for (index, line) in events.iter().enumerate() {
        if !explain(&plans, &source, index + 1, line) {
            failing += 1;
        }
    }
    if failing > 0 {
        anyhow::bail!("{failing} of {} event(s) would be rejected or flagged by the plan", events.len());
    }
    println!("\nok: all {} event(s) conform", events.len());
    Ok(())
}

/// The source whose plan checks the events: the flag, else the only one.
fn pick_source(plans: &Plans, flag: Option<&str>) -> anyhow::Result<String> {
    match (flag, plans.source_names().as_slice()) {
        (Some(name), _) if plans.source(name).is_some() => Ok(name.to_owned()),
        (Some(name), names) => {
            anyhow::bail!("source `{name}` has no plan here (sources with a plan: {})", names.join(", "))
        }
        (None, [only]) => Ok((*only).to_owned()),
        (None, names) => anyhow::bail!("name the events' source with --source (one of: {})", names.join(", ")),
    }
}

/// Non-blank lines of stdin; nothing when stdin is a terminal.
fn read_lines() -> anyhow::Result<Vec<String>> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(Vec::new());
    }
    let mut text = String::new();
    stdin.read_to_string(&mut text).context("reading events from stdin")?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect())
}

/// Prints what the plan says of one event; whether it passes.
fn explain(plans: &Plans, source: &str, number: usize, line: &str) -> bool {
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(error) => {
            println!("\nevent {number}: not JSON: {error}");
            return false;
        }
    };
    let event = match Event::from_value(value.clone(), None) {
        Ok(event) => event,
        Err((error, _)) => {
            println!("\nevent {number}: not a valid event, rejected before any plan: {error}");
            return false;
        }
    };
    let name = event.event.as_deref().map(|n| format!(" `{n}`")).unwrap_or_default();
    print!("\nevent {number}: {}{name} from source `{source}`: ", event.kind.as_str());
    let plan = plans.source(source);
    let Some(schema) = plan.and_then(|p| p.schema_for(event.kind, event.event.as_deref())) else {
        println!("no schema applies, not checked");
        return true;
    };
    // Checked as the gateway checks it: as sent, without the write key.
    let mut value = value;
    if let Some(map) = value.as_object_mut() {
        map.remove("writeKey");
    }
    let Some(verdict) = schema.check(&value) else {
        println!("{}: ok", schema.file);
        return true;
    };
    println!("{}: {} violation(s)", schema.file, verdict.total);
    for violation in &verdict.violations {
        let at = if violation.path.is_empty() { "the event" } else { violation.path.as_str() };
        println!("  at {at}: {}", violation.message);
        println!("    schema path {}", violation.schema_path);
    }
    if verdict.total > verdict.violations.len() {
        println!("  and {} more", verdict.total - verdict.violations.len());
    }
    false
}
