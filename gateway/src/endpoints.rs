//! The endpoint table: which handler serves a method and path, and the template used as its
//! metric label (never the raw path).

use clickstream_schema::EventType;
use http::Method;

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
    Ingest(IngestKind),
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
            "/v1/batch" | "/v1/import" | "/v1/b" => (Self::Ingest(IngestKind::Batch), Method::POST),
            "/v1/events" => (Self::Ingest(IngestKind::Events), Method::POST),
            "/v1/m" => (Self::SdkTelemetry, Method::POST),
            "/t.js" => (Self::TrackerScript, Method::GET),
            _ => match path.strip_prefix("/v1/") {
                Some(rest) => match Self::typed_or_settings(rest) {
                    Some(found) => found,
                    None => return Self::NotFound,
                },
                None => return Self::NotFound,
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
            return Some((Self::Ingest(IngestKind::Single(kind)), Method::POST));
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
            Self::Ingest(IngestKind::Batch) => "/v1/batch",
            Self::Ingest(IngestKind::Events) => "/v1/events",
            Self::Ingest(IngestKind::Single(_)) => "/v1/{type}",
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
        assert_eq!(post("/v1/batch"), Endpoint::Ingest(IngestKind::Batch));
        assert_eq!(post("/v1/import"), Endpoint::Ingest(IngestKind::Batch));
        assert_eq!(post("/v1/b"), Endpoint::Ingest(IngestKind::Batch));
        assert_eq!(post("/v1/t"), Endpoint::Ingest(IngestKind::Single(EventType::Track)));
        assert_eq!(post("/v1/identify"), Endpoint::Ingest(IngestKind::Single(EventType::Identify)));
        assert_eq!(post("/v1/s"), Endpoint::Ingest(IngestKind::Single(EventType::Screen)));
        assert_eq!(post("/v1/m"), Endpoint::SdkTelemetry);
        assert_eq!(post("/v1/nope"), Endpoint::NotFound);
        assert_eq!(Endpoint::resolve(&Method::GET, "/v1/batch"), Endpoint::MethodNotAllowed);
        assert_eq!(Endpoint::resolve(&Method::GET, "/v1/projects/wk_1/settings"), Endpoint::Settings("wk_1".into()));
        assert_eq!(Endpoint::resolve(&Method::OPTIONS, "/v1/t"), Endpoint::Preflight);
        assert_eq!(Endpoint::resolve(&Method::GET, "/t.js"), Endpoint::TrackerScript);
        assert_eq!(Endpoint::resolve(&Method::HEAD, "/t.js"), Endpoint::TrackerScript);
        assert_eq!(post("/t.js"), Endpoint::MethodNotAllowed);
    }
}
