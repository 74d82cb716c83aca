//! The admin listener every service runs beside its public one: `GET /metrics` (Prometheus
//! text from the service's `Telemetry`), `GET /healthz`, and `GET /readyz` from a readiness
//! callback the service supplies.
//!
//! A service wires it like this (the gateway does the same in `gateway::server::start`):
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
//! use clickstream_platform::admin::{AdminServer, Readiness};
//! use clickstream_platform::telemetry::{Telemetry, TelemetryConfig};
//!
//! let telemetry = Arc::new(Telemetry::new("clickstream-enricher", &TelemetryConfig::default())?);
//! let commits = Arc::new(AtomicU64::new(0));
//! let counted = commits.clone();
//! // Exported as `enricher_transaction_commits_total`.
//! telemetry.observe_counter("enricher.transaction.commits", "Kafka transactions committed.", move || {
//!     counted.load(Ordering::Relaxed)
//! });
//! let table_loaded = Arc::new(AtomicBool::new(false));
//! let loaded = table_loaded.clone();
//! let readiness = Arc::new(move || match loaded.load(Ordering::Relaxed) {
//!     true => Readiness::Ready,
//!     false => Readiness::Unavailable("loading the product table".into()),
//! });
//! let admin = AdminServer::start("127.0.0.1:9465", telemetry.clone(), readiness).await?;
//! println!("metrics at http://{}/metrics", admin.addr);
//! // ... run the service; then:
//! admin.shutdown().await;
//! telemetry.shutdown();
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::telemetry::{Telemetry, PROMETHEUS_CONTENT_TYPE};

/// What `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// 200 `{"status":"ok"}`.
    Ready,
    /// 200 `{"status":"degraded","reason":...}`: working, but not the usual way.
    Degraded(String),
    /// 503 `{"status":"unavailable","reason":...}`: send no traffic here.
    Unavailable(String),
}

impl Readiness {
    /// The status code and JSON body `/readyz` answers with.
    pub fn status_and_body(&self) -> (StatusCode, serde_json::Value) {
        match self {
            Self::Ready => (StatusCode::OK, serde_json::json!({"status": "ok"})),
            Self::Degraded(reason) => (StatusCode::OK, serde_json::json!({"status": "degraded", "reason": reason})),
            Self::Unavailable(reason) => {
                (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "unavailable", "reason": reason}))
            }
        }
    }
}

/// The service's readiness, asked on every `/readyz`; it must be cheap and must not block.
pub type ReadinessCheck = Arc<dyn Fn() -> Readiness + Send + Sync>;

/// The body of an admin answer: whole, or streamed (the gateway console's Server-Sent Events).
pub type AdminBody = BoxBody<Bytes, Infallible>;

/// An admin answer on its way.
pub type AdminAnswer = Pin<Box<dyn Future<Output = Response<AdminBody>> + Send>>;

/// Routes a service adds to its admin listener, beside `/metrics`, `/healthz` and `/readyz`.
pub trait AdminRoutes: Send + Sync {
    /// The answer to a request on one of the service's own paths; `None` for any other path.
    fn route(&self, request: &http::request::Parts) -> Option<AdminAnswer>;
}

/// A running admin listener; it stops on `shutdown` or when dropped.
#[derive(Debug)]
pub struct AdminServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `listen` and serves in the background. Must run inside tokio.
    pub async fn start(listen: &str, telemetry: Arc<Telemetry>, readiness: ReadinessCheck) -> std::io::Result<Self> {
        Self::start_with_routes(listen, telemetry, readiness, None).await
    }

    /// `start`, with the service's own routes tried first.
    pub async fn start_with_routes(
        listen: &str,
        telemetry: Arc<Telemetry>,
        readiness: ReadinessCheck,
        routes: Option<Arc<dyn AdminRoutes>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, telemetry, readiness, routes, stopped));
        tracing::info!(%addr, "admin listening (/metrics, /healthz, /readyz)");
        Ok(Self { addr, stop, task })
    }

    /// Stops accepting and closes open connections.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    readiness: ReadinessCheck,
    routes: Option<Arc<dyn AdminRoutes>>,
    mut stopped: watch::Receiver<bool>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let (telemetry, readiness, routes) = (telemetry.clone(), readiness.clone(), routes.clone());
        let service = service_fn(move |request: Request<Incoming>| {
            let (parts, _body) = request.into_parts();
            let answering: AdminAnswer = match routes.as_ref().and_then(|routes| routes.route(&parts)) {
                Some(own) => own,
                None => {
                    let response = answer(&parts.method, parts.uri.path(), &telemetry, &readiness);
                    Box::pin(std::future::ready(response.map(|body| body.boxed())))
                }
            };
            async move { Ok::<_, Infallible>(answering.await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// The admin routes, without a socket.
pub fn answer(method: &Method, path: &str, telemetry: &Telemetry, readiness: &ReadinessCheck) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return json(StatusCode::METHOD_NOT_ALLOWED, &serde_json::json!({"error": "method_not_allowed"}));
    }
    match path {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(telemetry.render_prometheus())));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE));
            response
        }
        "/healthz" => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        "/readyz" => {
            let (status, body) = readiness().status_and_body();
            json(status, &body)
        }
        _ => json(StatusCode::NOT_FOUND, &serde_json::json!({"error": "not_found"})),
    }
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TelemetryConfig;

    #[test]
    fn routes_metrics_health_and_readiness() {
        let telemetry = Telemetry::local("admin-test");
        telemetry.meter().u64_counter("admin.test.hits").build().add(3, &[]);
        telemetry.observe_counter("admin.test.kept", "A count kept elsewhere.", || 7);
        telemetry.observe_gauge("admin_test_lag", "A level kept elsewhere.", || 2.5);
        assert!(telemetry.tracer().is_none(), "no OTLP endpoint, so no tracer and no spans");
        let tls = TelemetryConfig { otlp_endpoint: "https://collector:4318".into(), ..TelemetryConfig::default() };
        assert!(Telemetry::new("admin-test", &tls).is_err(), "https endpoints are refused at startup");
        let ready: ReadinessCheck = Arc::new(|| Readiness::Degraded("spooling".into()));
        let metrics = answer(&Method::GET, "/metrics", &telemetry, &ready);
        assert_eq!(metrics.headers()[header::CONTENT_TYPE], PROMETHEUS_CONTENT_TYPE);
        let body = format!("{:?}", metrics.body());
        assert!(body.contains("admin_test_hits_total 3"), "{body}");
        assert!(body.contains("admin_test_kept_total 7") && body.contains("admin_test_lag 2.5"), "{body}");
        assert_eq!(answer(&Method::GET, "/healthz", &telemetry, &ready).status(), StatusCode::OK);
        assert_eq!(answer(&Method::GET, "/readyz", &telemetry, &ready).status(), StatusCode::OK);
        let down: ReadinessCheck = Arc::new(|| Readiness::Unavailable("kafka down".into()));
        assert_eq!(answer(&Method::GET, "/readyz", &telemetry, &down).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer(&Method::POST, "/metrics", &telemetry, &ready).status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer(&Method::GET, "/other", &telemetry, &ready).status(), StatusCode::NOT_FOUND);
    }
}
