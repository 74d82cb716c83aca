//! Reloading `[[sources]]`, `sources_file`, `[routing]` and `[tracking_plan]` in a running gateway (the CLI does
//! it on SIGHUP; a changed `sources_file` is picked up by itself). The new config is checked
//! first; a bad one is refused and the running one kept. Open connections and requests in
//! flight are untouched: each request keeps what it started with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickstream_routing::Problem;

use crate::app::AppState;
use crate::config::{GatewayConfig, SourcesFileError};
use crate::metrics::Metrics;
use crate::plan::{InvalidPlan, TrackingPlans};
use crate::routing::Routing;
use crate::sources::SourceRegistry;

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no sources configured: a gateway without write keys would refuse every event")]
    NoSources,
    #[error("invalid routing config: {}", list(.0))]
    Routing(Vec<Problem>),
    #[error(transparent)]
    SourcesFile(#[from] SourcesFileError),
    #[error(transparent)]
    TrackingPlan(#[from] InvalidPlan),
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// What a reload put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub sources: usize,
    pub rules: usize,
    /// Sources with a tracking plan.
    pub plans: usize,
    /// Whether the fixed topics were checked against the cluster (false when unreachable).
    pub topics_checked: bool,
    /// Whether the new config also changes settings that only a restart applies.
    pub restart_needed: bool,
}

/// Swaps sources, routing rules and tracking plans in a running gateway.
#[derive(Debug, Clone)]
pub struct Reloader {
    sources: Arc<SourceRegistry>,
    routing: Arc<Routing>,
    plans: Arc<TrackingPlans>,
    metrics: Arc<Metrics>,
    /// The config as loaded, with `sources_file` not yet read, so a file reload starts from it.
    running: Arc<Mutex<GatewayConfig>>,
}

impl Reloader {
    /// `loaded` is the config the gateway started from, before `sources_file` was read.
    pub fn new(state: &AppState, loaded: GatewayConfig) -> Self {
        Self {
            sources: state.sources.clone(),
            routing: state.routing.clone(),
            plans: state.plans.clone(),
            metrics: state.metrics.clone(),
            running: Arc::new(Mutex::new(loaded)),
        }
    }

    /// Checks `config` and puts its sources (with `sources_file`'s), routing rules and tracking
    /// plans in force, or refuses it whole.
    pub async fn reload(&self, config: GatewayConfig) -> Result<Reloaded, ReloadError> {
        let plans = crate::plan::compile(&config.tracking_plan).inspect_err(|_| self.metrics.plan_reload_failed())?;
        let sources = config.all_sources()?;
        if sources.is_empty() {
            return Err(ReloadError::NoSources);
        }
        let router = self.routing.compile(&config.routing).map_err(ReloadError::Routing)?;
        let kafka = self.running.lock().unwrap_or_else(|p| p.into_inner()).kafka.clone();
        let catalog = self.routing.catalog().clone();
        let refresh_kafka = kafka.clone();
        let refreshed =
            tokio::task::spawn_blocking(move || catalog.refresh_blocking(&refresh_kafka, Duration::from_secs(3))).await;
        // As at start: topics are confirmed when the cluster answers, and taken on trust when it
        // cannot be reached (the spool holds events meanwhile).
        let topics_checked = matches!(refreshed, Ok(Ok(_)));
        if topics_checked {
            let missing = self.routing.missing_topics(&config.routing);
            if !missing.is_empty() {
                return Err(ReloadError::Routing(missing));
            }
        }
        if router.needs_topic_metadata() {
            self.routing.catalog().spawn_refresher(kafka, Duration::from_secs(config.routing.topic_refresh_secs));
        }
        let rules = config.routing.rules.len();
        self.sources.replace(&sources);
        self.routing.replace(router);
        let plan_count = plans.source_names().len();
        self.plans.replace(plans);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let rest = |c: &GatewayConfig| GatewayConfig {
            sources: Vec::new(),
            sources_file: String::new(),
            routing: Default::default(),
            tracking_plan: Default::default(),
            ..c.clone()
        };
        let restart_needed = rest(&running) != rest(&config);
        *running = config;
        let reloaded =
            Reloaded { sources: self.sources.len(), rules, plans: plan_count, topics_checked, restart_needed };
        tracing::info!(
            sources = reloaded.sources,
            rules,
            plans = plan_count,
            topics_checked,
            "reloaded sources, routing rules and tracking plans{}",
            if restart_needed { "; other changed settings apply only after a restart" } else { "" }
        );
        Ok(reloaded)
    }
}

/// Reloads when the running config's `sources_file` changes on disk. The contents are compared,
/// not the modification time: a Kubernetes Secret is replaced through a symlink swap, and two
/// writes within one second can share an mtime.
pub async fn watch_sources_file(reloader: Reloader, every: Duration) {
    let path = || reloader.running.lock().unwrap_or_else(|p| p.into_inner()).sources_file.clone();
    let read = |path: &str| if path.is_empty() { None } else { std::fs::read(path).ok() };
    let mut seen = read(&path());
    loop {
        tokio::time::sleep(every).await;
        let current = read(&path());
        if current.is_none() || current == seen {
            continue;
        }
        seen = current;
        let config = reloader.running.lock().unwrap_or_else(|p| p.into_inner()).clone();
        tracing::info!(path = %config.sources_file, "sources_file changed: reloading sources");
        if let Err(error) = reloader.reload(config).await {
            tracing::error!("sources_file reload refused, keeping the running sources: {error}");
        }
    }
}
