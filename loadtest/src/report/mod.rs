//! The report: what every run measured, as JSON for tools and as a self-contained HTML page
//! with SVG charts for people, plus the terminal summary.

mod html;
pub mod svg;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::capacity::Capacity;
use crate::e2e::E2eResult;
use crate::idle::IdleResult;
use crate::overload::OverloadResult;
use crate::payload::Mode;
use crate::runner::PhaseResult;
use crate::search::FindMax;
use crate::stats::TimelinePoint;
use crate::target::{TargetInfo, TargetKind};

pub fn serialize_secs<S: serde::Serializer>(duration: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(duration.as_secs_f64())
}

/// Everything one `clickstream loadtest` command measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub title: String,
    pub generated_at: String,
    /// The command line, so the figures can be reproduced.
    pub command: String,
    pub machine: Machine,
    pub runs: Vec<TargetRun>,
    pub comparison: Vec<Ratio>,
    /// `idle-connections`: memory per idle connection, target first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub idle_connections: Vec<IdleResult>,
    /// `overload`: recovery, shedding and spooling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overload: Option<OverloadResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    /// CPUs the load generator may run on.
    pub loadgen_cpus: String,
}

impl Machine {
    pub fn this() -> Self {
        Self {
            cpus: std::fs::read_to_string("/sys/devices/system/cpu/online")
                .ok()
                .and_then(|online| crate::cpu::count_cpus(online.trim()))
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
            loadgen_cpus: crate::cpu::own_cpu_list(),
        }
    }
}

/// The runs against one target in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRun {
    pub label: String,
    pub target: TargetInfo,
    pub mode: Mode,
    pub connections: usize,
    pub phases: Vec<PhaseResult>,
    pub timeline: Vec<TimelinePoint>,
    pub find_max: Option<FindMax>,
    pub e2e: Option<E2eResult>,
    pub capacity: Option<Capacity>,
    /// A closed-loop peak run: the phase is what the connections reached back to back.
    pub peak: bool,
}

impl TargetRun {
    /// Whether this is `kind`'s run of batches (`batched`) or of single events.
    pub fn is(&self, kind: TargetKind, batched: bool) -> bool {
        self.target.kind == kind && matches!(self.mode, Mode::Batch { .. }) == batched
    }

    /// `gateway (acks=all, linger.ms=5)`.
    pub fn target_label(&self) -> String {
        match &self.target.kafka {
            Some(kafka) => format!("{} ({})", self.target.kind.as_str(), kafka.label()),
            None => self.target.kind.as_str().to_owned(),
        }
    }
}

/// `subject / baseline`, or 0 when the baseline reached nothing.
pub fn ratio(subject: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        subject / baseline
    } else {
        0.0
    }
}

/// One comparison: a subject's figure over a baseline's.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub subject: String,
    pub subject_value: f64,
    pub baseline: String,
    pub baseline_value: f64,
    pub unit: String,
    pub ratio: f64,
    /// The ratio the project aims for.
    pub goal: f64,
    /// Each round's ratio, when the comparison ran in rounds (`ratio` and the two figures are
    /// then the median round's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<f64>,
}

impl Report {
    pub fn new(title: &str, command: String) -> Self {
        Self {
            title: title.to_owned(),
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command,
            machine: Machine::this(),
            runs: Vec::new(),
            comparison: Vec::new(),
            idle_connections: Vec::new(),
            overload: None,
        }
    }

    /// Writes `report.json` and `report.html` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = dir.join("report.json");
        let html = dir.join("report.html");
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", json.display()))?;
        std::fs::write(&html, html::render(self)).with_context(|| format!("writing {}", html.display()))?;
        Ok((json, html))
    }
}

/// The terminal summary of a target run.
pub fn print_run(run: &TargetRun) {
    println!("\n== {}", run.label);
    let at = run.target.url.as_deref().map_or(String::new(), |url| format!(" at {url}"));
    let pinned = run.target.cpus.as_deref().map_or(String::new(), |c| format!(", pinned to CPU {c}"));
    println!("   {}{at}{pinned}, {} connections", run.target_label(), run.connections);
    if run.peak {
        println!("   closed loop: each connection sends as soon as it is answered; latency is service time");
    }
    if !run.phases.is_empty() {
        println!("{}", phase_header());
        for phase in &run.phases {
            println!("{}", phase_line(phase));
        }
    }
    if let Some(search) = &run.find_max {
        match (search.max_rps, search.max_events_per_sec) {
            (Some(rps), Some(eps)) => println!(
                "   MAX RATE at p99 <= {} ms: {rps:.0} req/s = {eps:.0} events/s ({})",
                search.slo.p99_ms, search.stopped_because
            ),
            _ => println!("   no probed rate met p99 <= {} ms ({})", search.slo.p99_ms, search.stopped_because),
        }
    }
    if let Some(e2e) = &run.e2e {
        println!("   end to end: {} events sent, {} acknowledged", e2e.sent_events, e2e.acknowledged_events);
        for topic in &e2e.topics {
            if topic.present {
                println!(
                    "   {} ({}): seen {}, lost {}, seen unacknowledged {}, duplicates {} (re-read {}), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    topic.path,
                    topic.topic,
                    topic.seen,
                    topic.lost,
                    topic.seen_unacknowledged,
                    topic.duplicates,
                    topic.redelivered,
                    topic.latency.p50_ms,
                    topic.latency.p99_ms,
                    topic.latency.max_ms
                );
            } else {
                println!("   {} ({}): topic not present, not measured", topic.path, topic.topic);
            }
        }
    }
    if let Some(capacity) = &run.capacity {
        for line in capacity.describe() {
            println!("   {line}");
        }
    }
}

fn phase_header() -> String {
    format!(
        "   {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>9}",
        "offered/s",
        "ok req/s",
        "events/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "late",
        "drop",
        "cpu g/s"
    )
}

fn phase_line(p: &PhaseResult) -> String {
    let cpu = |c: Option<f64>| c.map_or("-".to_owned(), |c| format!("{c:.2}"));
    format!(
        "   {:>9.0} {:>9.0} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>6} {:>6} {:>9}",
        p.offered_rps,
        p.achieved_rps,
        p.achieved_events_per_sec,
        p.latency.p50_ms,
        p.latency.p90_ms,
        p.latency.p99_ms,
        p.latency.p999_ms,
        p.latency.max_ms,
        p.completed - p.ok_requests,
        p.late,
        p.dropped + p.abandoned,
        format!("{}/{}", cpu(p.loadgen_cpu_cores), cpu(p.server_cpu_cores))
    )
}

/// The terminal summary of a comparison, under `title`.
pub fn print_comparison(ratios: &[Ratio], title: &str) {
    if ratios.is_empty() {
        return;
    }
    println!("\n== {title}");
    for r in ratios {
        let figures = if r.rounds.len() > 1 {
            format!("median of {} rounds{}", r.rounds.len(), rounds_note(&r.rounds))
        } else {
            format!("{:.0} / {:.0} {}", r.subject_value, r.baseline_value, r.unit)
        };
        println!("   {}: {figures} = {:.2} (goal >= {:.1}; {} vs {})", r.name, r.ratio, r.goal, r.subject, r.baseline);
    }
}

/// " (0.31 0.45 0.38)": each round's ratio, for a ratio taken over rounds; empty for one run.
pub fn rounds_note(rounds: &[f64]) -> String {
    if rounds.len() < 2 {
        return String::new();
    }
    let each: Vec<String> = rounds.iter().map(|r| format!("{r:.2}")).collect();
    format!(" ({})", each.join(" "))
}
