//! The request handler: `app(state)` turns a request into a response without any socket, so
//! it can be tested directly and served by `server`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;
use serde_json::json;

use clickstream_platform::admin::Readiness;
use clickstream_platform::logging::LogThrottle;
use clickstream_platform::telemetry::Telemetry;

use crate::assets;
use crate::config::GatewayConfig;
use crate::cors;
use crate::dedup::Dedup;
use crate::endpoints::Endpoint;
use crate::error::{json_response, GatewayError};
use crate::metrics::Metrics;
use crate::plan::{InvalidPlan, TrackingPlans};
use crate::protect::Protection;
use crate::routing::{InvalidRouting, Routing};
use crate::sink::{EventSink, SinkHealth};
use crate::sources::SourceRegistry;
use crate::suppression::Suppression;

/// Everything a request needs.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<GatewayConfig>,
    pub sources: Arc<SourceRegistry>,
    pub sink: Arc<dyn EventSink>,
    pub(crate) protection: Arc<Protection>,
    pub(crate) dedup: Arc<Dedup>,
    pub metrics: Arc<Metrics>,
    /// Identities whose events are dropped at the edge.
    pub suppression: Arc<Suppression>,
    pub routing: Arc<Routing>,
    /// Each source's tracking plan, if it has one.
    pub plans: Arc<TrackingPlans>,
    /// Set when shutdown begins: `/readyz` turns 503 and connections close after their
    /// response, while requests are still served.
    pub(crate) draining: Arc<AtomicBool>,
}

impl AppState {
    /// State with Prometheus-only telemetry and the suppression file (if any) loaded once;
    /// refuses a routing config or a tracking plan that does not compile.
    pub fn new(config: GatewayConfig, sink: Arc<dyn EventSink>) -> Result<Self, InvalidConfig> {
        let routing = Routing::new(&config)?;
        let plans = TrackingPlans::new(crate::plan::compile(&config.tracking_plan)?);
        let telemetry = Arc::new(Telemetry::local(crate::metrics::SERVICE_NAME));
        Ok(Self::with_telemetry(config, sink, telemetry, routing, plans))
    }

    /// State whose instruments live on `telemetry`, with routing already compiled.
    pub fn with_telemetry(
        config: GatewayConfig,
        sink: Arc<dyn EventSink>,
        telemetry: Arc<Telemetry>,
        routing: Routing,
        plans: TrackingPlans,
    ) -> Self {
        let sources = Arc::new(SourceRegistry::new(&config.sources));
        let protection = Arc::new(Protection::new(&config.rate_limit));
        let dedup = Arc::new(Dedup::new(&config.dedup));
        let routing = Arc::new(routing);
        let metrics = Arc::new(Metrics::new(telemetry, &Arc::downgrade(&sink), Arc::downgrade(&dedup)));
        let suppression = Arc::new(Suppression::open(&config.privacy.suppression_file));
        let draining = Arc::new(AtomicBool::new(false));
        let plans = Arc::new(plans);
        let config = Arc::new(config);
        Self { config, sources, sink, protection, dedup, metrics, suppression, routing, plans, draining }
    }

    /// Starts the drain: from now on the instance asks to be taken out of load balancing.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// What `/readyz` answers, on the public and the admin port.
    pub fn readiness(&self) -> Readiness {
        if self.is_draining() {
            return Readiness::Unavailable("shutting down: draining connections".to_owned());
        }
        match self.sink.health() {
            SinkHealth::Ready => Readiness::Ready,
            SinkHealth::Degraded(reason) => Readiness::Degraded(reason),
            SinkHealth::Unavailable(reason) => Readiness::Unavailable(reason),
        }
    }

    /// Forgets idle rate-limit keys now and then; runs until the state is dropped.
    pub(crate) async fn housekeeping(protection: std::sync::Weak<Protection>) {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            match protection.upgrade() {
                Some(protection) => protection.forget_idle(),
                None => return,
            }
        }
    }
}

/// A config the gateway cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum InvalidConfig {
    #[error(transparent)]
    Routing(#[from] InvalidRouting),
    #[error(transparent)]
    TrackingPlan(#[from] InvalidPlan),
}

/// The gateway as a request → response function.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) state: AppState,
}

/// Builds the handler over `state`.
pub fn app(state: AppState) -> App {
    App { state }
}

impl App {
    /// Handles one request from `peer`.
    pub async fn handle<B>(&self, request: Request<B>, peer: SocketAddr) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = std::time::Instant::now();
        let origin = request.headers().get(header::ORIGIN).cloned();
        let endpoint = Endpoint::resolve(request.method(), request.uri().path());
        let response = self.respond(&endpoint, origin, request, peer).await;
        self.state.metrics.request(endpoint.template(), response.status(), started.elapsed());
        response
    }

    async fn respond<B>(
        &self,
        endpoint: &Endpoint,
        origin: Option<header::HeaderValue>,
        request: Request<B>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let result = match endpoint {
            Endpoint::Health => Ok(json_response(StatusCode::OK, &json!({"status": "ok"}))),
            Endpoint::Ready => Ok(self.readiness()),
            Endpoint::Preflight { .. } => Ok(cors::preflight(self.state.config.http.cors_max_age_secs)),
            Endpoint::SdkTelemetry => Ok(success()),
            Endpoint::Settings(key) => self.settings(key, request.headers()),
            Endpoint::Metrics if self.state.config.http.public_metrics => Ok(self.metrics()),
            // Off by default: metrics name sources and topics, which the public need not see.
            Endpoint::Metrics => Err(GatewayError::NotFound),
            Endpoint::Ingest(adapter) => {
                let result = match self.state.protection.enter() {
                    Ok(_in_flight) => self.ingest(*adapter, request, peer).await,
                    Err(shed) => Err(shed),
                };
                adapter.respond(result, &self.state.metrics)
            }
            Endpoint::PostHogConfig(route) => Ok(route.respond(request.uri().query())),
            // A public static file with its own Vary and CORS headers, which the API's
            // decoration below would overwrite.
            Endpoint::TrackerScript => return assets::tracker_script(request.headers()),
            Endpoint::NotFound => Err(GatewayError::NotFound),
            Endpoint::MethodNotAllowed => Err(GatewayError::MethodNotAllowed),
        };
        let mut response = result.unwrap_or_else(|error| {
            match &error {
                GatewayError::RateLimited { .. } => self.state.metrics.rate_limited(),
                GatewayError::Overloaded | GatewayError::CpuOverloaded { .. } | GatewayError::KafkaBehind { .. } => {
                    self.state.metrics.shed(error.kind());
                }
                _ => {}
            }
            if error.status().is_server_error() {
                log_unavailable(&error);
            }
            error.into_response(self.state.config.http.retry_after_secs)
        });
        let credentialed = match endpoint {
            Endpoint::Preflight { credentialed } => *credentialed,
            Endpoint::Ingest(adapter) => adapter.credentialed(),
            _ => false,
        };
        cors::decorate(&mut response, origin, credentialed);
        if self.state.is_draining() {
            // Keep-alive clients reconnect, and so reach an instance that is staying.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        response
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        let text = self.state.metrics.telemetry().render_prometheus();
        let mut response = Response::new(Full::new(Bytes::from(text)));
        let content_type = clickstream_platform::telemetry::PROMETHEUS_CONTENT_TYPE;
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
        response
    }

    fn readiness(&self) -> Response<Full<Bytes>> {
        let (status, body) = self.state.readiness().status_and_body();
        let mut response = json_response(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, self.state.config.http.retry_after_secs.into());
        }
        response
    }

    /// What analytics.js fetches from its CDN: points its `Segment.io` destination at us.
    fn settings(&self, write_key: &str, headers: &http::HeaderMap) -> Result<Response<Full<Bytes>>, GatewayError> {
        self.state.sources.lookup(write_key)?;
        let public_url = self.state.config.http.public_url.trim_end_matches('/');
        let (protocol, host) = match public_url.split_once("://") {
            Some((scheme, host)) => (scheme.to_owned(), host.to_owned()),
            None => {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
                ("http".to_owned(), host.to_owned())
            }
        };
        let body = json!({
            "integrations": {"Segment.io": {"apiKey": write_key, "apiHost": format!("{host}/v1"), "protocol": protocol}},
            "plan": {"track": {"__default": {"enabled": true}}, "identify": {"__default": {"enabled": true}}},
        });
        Ok(json_response(StatusCode::OK, &body))
    }
}

/// `{"success":true}`: the answer to nearly every Segment request, so a static body rather than a
/// JSON value built and serialized each time.
pub(crate) fn success() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"success":true}"#)));
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// Logs the cause of refused requests without flooding the log during an outage.
fn log_unavailable(error: &GatewayError) {
    static THROTTLE: LogThrottle = LogThrottle::new();
    if THROTTLE.allow() {
        tracing::warn!(kind = error.kind(), %error, "refusing events");
    }
}
