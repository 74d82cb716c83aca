//! Servers the harness can measure besides a real gateway: the hyper baseline (answers 200
//! after reading the body, the HTTP ceiling) and the gateway's handler over a null sink. They
//! run in process for tests, or as `clickstream loadtest serve` pinned to a core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use clickstream_gateway::server::{serve_with, ServeOptions};
use clickstream_gateway::sink::NullSink;
use clickstream_gateway::{app, AppState, GatewayConfig};

/// A server kind that needs no Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Reads the body and answers `200 {"success":true}`.
    HyperBaseline,
    /// The gateway's full handler, with a sink that drops every record.
    GatewayNull,
}

impl ServerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::HyperBaseline => "hyper-baseline",
            Self::GatewayNull => "gateway-null",
        }
    }
}

impl std::str::FromStr for ServerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hyper-baseline" => Ok(Self::HyperBaseline),
            "gateway-null" => Ok(Self::GatewayNull),
            other => Err(format!("unknown server kind {other:?}: use hyper-baseline or gateway-null")),
        }
    }
}

/// A server running on this process's runtime; stopped when dropped.
#[derive(Debug)]
pub struct InProcessServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl InProcessServer {
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts `kind` on `listen` (port 0 picks a free port).
pub async fn start(kind: ServerKind, config: &GatewayConfig, listen: &str) -> anyhow::Result<InProcessServer> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    // Both kinds take the gateway's connection limits, so an idle-connection test can raise
    // them for the baseline as for the gateway.
    let options = ServeOptions {
        header_read_timeout: Duration::from_millis(config.http.header_read_timeout_ms),
        max_connections: config.http.max_connections,
        grace: Duration::from_secs(1),
    };
    let task = match kind {
        ServerKind::HyperBaseline => {
            tokio::spawn(serve_with(listener, |request, _peer| baseline(request), shutdown, options))
        }
        ServerKind::GatewayNull => {
            let handler = Arc::new(app(AppState::new(config.clone(), Arc::new(NullSink))?));
            tokio::spawn(serve_with(
                listener,
                move |request, peer| {
                    let handler = handler.clone();
                    async move { handler.handle(request, peer).await }
                },
                shutdown,
                options,
            ))
        }
    };
    Ok(InProcessServer { addr, stop: Some(stop), task })
}

/// The HTTP ceiling: read the whole body, answer 200 with the gateway's success body.
async fn baseline(request: http::Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(br#"{"success":true}"#)))
        .unwrap_or_else(|e| unreachable!("a static response is valid: {e}"))
}

/// `clickstream loadtest serve`: runs `kind` until `shutdown` resolves.
pub async fn serve_until(
    kind: ServerKind,
    config: &GatewayConfig,
    listen: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let server = start(kind, config, listen).await?;
    eprintln!("{} listening on {}", kind.as_str(), server.addr);
    shutdown.await;
    server.shutdown().await;
    Ok(())
}
