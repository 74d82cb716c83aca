//! Routing at the edge: the rules (from `clickstream_routing`) decide each event's topics and
//! key; this module supplies what they need from the running gateway (the cluster's topics,
//! a per-key rate limiter for hot-key overflow) and turns the decision into targets, which
//! ingest makes into records.

mod catalog;

use std::num::NonZeroU32;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clickstream_platform::logging::LogThrottle;
use clickstream_routing::{Decision, EventFacts, PartitionKey, Problem, Router, RoutingConfig};
use clickstream_schema::Event;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub use catalog::TopicCatalog;

use crate::config::GatewayConfig;
use crate::metrics::Metrics;

/// The rules in force, swapped whole on reload.
#[derive(Debug)]
pub struct ActiveRoutes {
    router: Router,
    hot_keys: Option<HotKeys>,
}

impl ActiveRoutes {
    /// Whether routing reads event properties (see [`Router::reads_properties`]).
    pub(crate) fn reads_properties(&self) -> bool {
        self.router.reads_properties()
    }
}

/// Hot-key overflow: keys sending faster than their quota go to `topic`.
#[derive(Debug)]
struct HotKeys {
    topic: String,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl ActiveRoutes {
    fn new(router: Router) -> Self {
        let overflow = &router.config().overflow;
        let hot_keys = NonZeroU32::new(overflow.per_key_per_sec).filter(|_| overflow.enabled()).map(|rate| {
            let burst = NonZeroU32::new(overflow.burst.max(overflow.per_key_per_sec)).unwrap_or(rate);
            HotKeys {
                topic: overflow.topic.clone(),
                limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            }
        });
        Self { router, hot_keys }
    }

    pub fn router(&self) -> &Router {
        &self.router
    }
}

/// A routing config that does not compile, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid routing config (check it with `clickstream routing check`):{}", list_problems(.0))]
pub struct InvalidRouting(pub Vec<Problem>);

fn list_problems(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Routing state shared by every request.
#[derive(Debug)]
pub struct Routing {
    active: RwLock<Arc<ActiveRoutes>>,
    catalog: Arc<TopicCatalog>,
    /// `topics.raw` at start: the default route when `routing.default_topics` is empty.
    raw_topic: String,
}

impl Routing {
    /// Compiles the routing section of `config`; refuses a config with problems. The one place
    /// a gateway's routing is compiled at start.
    pub fn new(config: &GatewayConfig) -> Result<Self, InvalidRouting> {
        let router = Router::new(&config.routing, &config.topics.raw).map_err(InvalidRouting)?;
        Ok(Self {
            active: RwLock::new(Arc::new(ActiveRoutes::new(router))),
            catalog: Arc::default(),
            raw_topic: config.topics.raw.clone(),
        })
    }

    /// Compiles `config` without replacing anything: what a reload would switch to.
    pub fn compile(&self, config: &RoutingConfig) -> Result<Router, Vec<Problem>> {
        Router::new(config, &self.raw_topic)
    }

    /// Fixed topics of `config` that the catalog (as last refreshed) does not have.
    pub fn missing_topics(&self, config: &RoutingConfig) -> Vec<Problem> {
        Router::check(config, &self.raw_topic, self.catalog.as_ref())
    }

    /// Puts `router` in force for the requests that start from now on.
    pub fn replace(&self, router: Router) {
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ActiveRoutes::new(router));
    }

    /// The rules in force; a request holds them for all its events.
    pub fn active(&self) -> Arc<ActiveRoutes> {
        self.active.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn catalog(&self) -> &Arc<TopicCatalog> {
        &self.catalog
    }

    /// Forgets idle hot-key counters now and then; runs until the routing state is dropped.
    pub(crate) async fn housekeeping(routing: Weak<Routing>) {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let Some(routing) = routing.upgrade() else { return };
            if let Some(hot) = &routing.active().hot_keys {
                hot.limiter.retain_recent();
            }
        }
    }

    /// The rules in force for one request, with what applying them needs.
    pub(crate) fn for_request<'a>(&'a self, metrics: &'a Metrics) -> RequestRoutes<'a> {
        RequestRoutes { routing: self, active: self.active(), metrics }
    }
}

/// Where one record of an event goes: a topic, and the key or partition routing chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub topic: String,
    pub key: Option<String>,
    /// Set for random keys and hot-key overflow; `None` lets the producer hash the key.
    pub partition: Option<i32>,
}

/// Routing as one request sees it: the rules in force when it began, for all its events.
#[derive(Debug)]
pub(crate) struct RequestRoutes<'a> {
    routing: &'a Routing,
    active: Arc<ActiveRoutes>,
    metrics: &'a Metrics,
}

impl RequestRoutes<'_> {
    /// Whether routing reads event properties (see [`Router::reads_properties`]).
    pub(crate) fn reads_properties(&self) -> bool {
        self.active.reads_properties()
    }

    /// Where one accepted event goes: one target per topic of its route, keyed as the route
    /// says, or a single one on the overflow topic when its key is hot.
    pub(crate) fn targets(&self, event: &Event, source: &str, received_at: DateTime<Utc>) -> Vec<Target> {
        let (active, catalog) = (&self.active, self.routing.catalog.as_ref());
        let facts = EventFacts::new(event, source, received_at);
        let decision = active.router.route(&facts, catalog);
        if decision.fallback.is_some() {
            self.metrics.route_fallback();
            warn_fallback(&decision);
        }
        if let (Some(hot), true, PartitionKey::Keyed(key)) = (&active.hot_keys, decision.overflow, &decision.key) {
            if hot.limiter.check_key(key).is_err() {
                self.metrics.hot_key_overflow();
                let partition = catalog.random_partition(&hot.topic);
                // Without a partition count, the key is dropped so the producer spreads them.
                let key = partition.map(|_| key.clone());
                return vec![Target { topic: hot.topic.clone(), key, partition }];
            }
        }
        let key = decision.key;
        decision
            .topics
            .into_iter()
            .map(|topic| {
                let (key, partition) = match &key {
                    PartitionKey::Keyed(key) => (Some(key.clone()), None),
                    PartitionKey::Random => (None, catalog.random_partition(&topic)),
                    PartitionKey::Unkeyed => (None, None),
                };
                Target { topic, key, partition }
            })
            .collect()
    }
}

fn warn_fallback(decision: &Decision<'_>) {
    static THROTTLE: LogThrottle = LogThrottle::new();
    if let Some(fallback) = &decision.fallback {
        if THROTTLE.allow() {
            tracing::warn!(rule = fallback.rule + 1, %fallback, "dynamic topic unusable; event sent to the default route");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::GatewayConfig;

    #[test]
    fn topics_apply_creates_the_fixed_routing_topics_too() {
        let routing = serde_json::from_value(serde_json::json!({
            "allowed_topics": ["events.*"],
            "rules": [{"event": "Order *", "topics": ["events.payments", "events.raw", "events.{source}"]}],
            "overflow": {"topic": "events.overflow", "per_key_per_sec": 50}
        }))
        .expect("routing config");
        let config = GatewayConfig { routing, ..GatewayConfig::default() };
        let names: Vec<String> = config.topic_specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["events.raw", "events.dlq", "products", "events.payments", "events.overflow"]);
    }
}
