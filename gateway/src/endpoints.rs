//! The endpoint table: which handler serves a method and path, and the template used as its
//! metric label (never the raw path).

use clickstream_schema::EventType;
use http::Method;

use crate::protocols::{Adapter, PostHogConfigRoute};

/// What an ingest endpoint's body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestKind {
    /// `{"batch": [...]}`: `/v1/batch`, `/v1/import`, `/v1/b`.
    Batch,
    /// One event of a known type: `/v1/track`, `/v1/t`, ...
    Single(EventType),
    /// A JSON array or NDJSON: `/v1/events`.
    Events,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Ready,
    /// Prometheus scrape.
    Metrics,
    Preflight,
    /// Events in, by any protocol.
    Ingest(Adapter),
    /// What posthog-js loads on start: an empty configuration.
    PostHogConfig(PostHogConfigRoute),
    /// analytics.js telemetry: accepted and discarded.
    SdkTelemetry,
    /// analytics.js settings for a write key.
    Settings(String),
    /// The JS tracker, `GET /t.js`.
    TrackerScript,
    NotFound,
    MethodNotAllowed,
}

impl Endpoint {
    pub fn resolve(method: &Method, path: &str) -> Self {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        if method == Method::OPTIONS {
            return Self::Preflight;
        }
        let (endpoint, wanted) = match path {
            "/healthz" => (Self::Health, Method::GET),
            "/readyz" => (Self::Ready, Method::GET),
            "/metrics" => (Self::Metrics, Method::GET),
            "/v1/batch" | "/v1/import" | "/v1/b" => (Self::Ingest(Adapter::Segment(IngestKind::Batch)), Method::POST),
            "/v1/events" => (Self::Ingest(Adapter::Segment(IngestKind::Events)), Method::POST),
            "/v1/m" => (Self::SdkTelemetry, Method::POST),
            "/t.js" => (Self::TrackerScript, Method::GET),
            "/e" | "/capture" | "/batch" | "/i/v0/e" | "/track" => (Self::Ingest(Adapter::PostHog), Method::POST),
            _ => match path.strip_prefix("/v1/") {
                Some(rest) => match Self::typed_or_settings(rest) {
                    Some(found) => found,
                    None => return Self::NotFound,
                },
                None => match PostHogConfigRoute::resolve(method, path) {
                    Some(route) => return Self::PostHogConfig(route),
                    None => return Self::NotFound,
                },
            },
        };
        if method == wanted || (wanted == Method::GET && method == Method::HEAD) {
            endpoint
        } else {
            Self::MethodNotAllowed
        }
    }

    fn typed_or_settings(rest: &str) -> Option<(Self, Method)> {
        if let Some(kind) = EventType::parse(rest).or_else(|| EventType::from_short_path(rest)) {
            return Some((Self::Ingest(Adapter::Segment(IngestKind::Single(kind))), Method::POST));
        }
        if let Some(kind) = rest.strip_prefix("pixel/").and_then(EventType::parse) {
            return Some((Self::Ingest(Adapter::Pixel(kind)), Method::GET));
        }
        let key = rest.strip_prefix("projects/")?.strip_suffix("/settings")?;
        (!key.is_empty() && !key.contains('/')).then(|| (Self::Settings(key.to_owned()), Method::GET))
    }

    /// Endpoint template for metrics and logs.
    pub fn template(&self) -> &'static str {
        match self {
            Self::Health => "/healthz",
            Self::Ready => "/readyz",
            Self::Metrics => "/metrics",
            Self::Preflight => "OPTIONS *",
            Self::Ingest(adapter) => adapter.template(),
            Self::PostHogConfig(route) => route.template(),
            Self::SdkTelemetry => "/v1/m",
            Self::Settings(_) => "/v1/projects/{writeKey}/settings",
            Self::TrackerScript => "/t.js",
            Self::NotFound => "unmatched",
            Self::MethodNotAllowed => "method_not_allowed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_paths_resolve() {
        let post = |p| Endpoint::resolve(&Method::POST, p);
        let segment = |kind| Endpoint::Ingest(Adapter::Segment(kind));
        assert_eq!(post("/v1/batch"), segment(IngestKind::Batch));
        assert_eq!(post("/v1/import"), segment(IngestKind::Batch));
        assert_eq!(post("/v1/b"), segment(IngestKind::Batch));
        assert_eq!(post("/v1/t"), segment(IngestKind::Single(EventType::Track)));
        assert_eq!(post("/v1/identify"), segment(IngestKind::Single(EventType::Identify)));
        assert_eq!(post("/v1/s"), segment(IngestKind::Single(EventType::Screen)));
        assert_eq!(post("/v1/m"), Endpoint::SdkTelemetry);
        assert_eq!(post("/v1/nope"), Endpoint::NotFound);
        assert_eq!(Endpoint::resolve(&Method::GET, "/v1/batch"), Endpoint::MethodNotAllowed);
        assert_eq!(Endpoint::resolve(&Method::GET, "/v1/projects/wk_1/settings"), Endpoint::Settings("wk_1".into()));
        assert_eq!(Endpoint::resolve(&Method::OPTIONS, "/v1/t"), Endpoint::Preflight);
        assert_eq!(Endpoint::resolve(&Method::GET, "/t.js"), Endpoint::TrackerScript);
        assert_eq!(Endpoint::resolve(&Method::HEAD, "/t.js"), Endpoint::TrackerScript);
        assert_eq!(post("/t.js"), Endpoint::MethodNotAllowed);
    }

    #[test]
    fn pixel_and_posthog_paths_resolve() {
        let get = |p| Endpoint::resolve(&Method::GET, p);
        assert_eq!(get("/v1/pixel/track"), Endpoint::Ingest(Adapter::Pixel(EventType::Track)));
        assert_eq!(get("/v1/pixel/page"), Endpoint::Ingest(Adapter::Pixel(EventType::Page)));
        assert_eq!(get("/v1/pixel/nope"), Endpoint::NotFound);
        assert_eq!(Endpoint::resolve(&Method::POST, "/v1/pixel/track"), Endpoint::MethodNotAllowed);
        for path in ["/e/", "/capture", "/batch/", "/i/v0/e/", "/track"] {
            assert_eq!(Endpoint::resolve(&Method::POST, path), Endpoint::Ingest(Adapter::PostHog), "{path}");
        }
        assert_eq!(get("/e"), Endpoint::MethodNotAllowed);
        assert!(matches!(get("/array/phc_x/config.js"), Endpoint::PostHogConfig(_)));
        assert!(matches!(Endpoint::resolve(&Method::POST, "/flags/"), Endpoint::PostHogConfig(_)));
    }
}
