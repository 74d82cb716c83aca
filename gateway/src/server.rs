//! Serving: accept loop over HTTP/1 and HTTP/2 with graceful shutdown, and `start`, which
//! wires a config into a running gateway.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{app, AppState};
use crate::config::GatewayConfig;
use crate::sink::KafkaSink;

/// Serves `handler` on `listener` until `shutdown` resolves, then lets open requests finish
/// for up to `grace`.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: impl Future<Output = ()>, grace: Duration)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Running out of file descriptors must not end the server.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let response = handler(request, peer);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    /// The address it listens on (useful when configured with port 0).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GatewayHandle {
    /// Stops accepting, finishes in-flight requests, flushes the producer.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Resolves when the server stops by itself or after `shutdown`.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }

    /// A sender that triggers shutdown, for signal handlers.
    pub fn take_stop(&mut self) -> Option<oneshot::Sender<()>> {
        self.stop.take()
    }
}

/// Checks config and topics, connects the producer, binds, and serves in the background.
pub async fn start(config: GatewayConfig) -> anyhow::Result<GatewayHandle> {
    if config.sources.is_empty() {
        anyhow::bail!("no sources configured: add at least one [[sources]] entry with a name and write_key");
    }
    let kafka = config.kafka.clone();
    let topics = [config.topics.raw.clone(), config.topics.dlq.clone()];
    tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        clickstream_platform::kafka::require_topics(&kafka, &names, Duration::from_secs(10))
    })
    .await??;
    let sink = Arc::new(KafkaSink::new(&config).context("creating the Kafka producer")?);
    let listener =
        TcpListener::bind(&config.http.listen).await.with_context(|| format!("binding {}", config.http.listen))?;
    let addr = listener.local_addr()?;
    let grace = Duration::from_secs(config.http.shutdown_grace_secs);
    let flush_timeout = Duration::from_millis(u64::from(config.producer.message_timeout_ms));
    let handler = Arc::new(app(AppState::new(config, sink.clone())));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve_handler = move |request, peer| {
            let handler = handler.clone();
            async move { handler.handle(request, peer).await }
        };
        serve(
            listener,
            serve_handler,
            async {
                let _ = stopped.await;
            },
            grace,
        )
        .await;
        let sink = sink.clone();
        let _ = tokio::task::spawn_blocking(move || sink.flush(flush_timeout)).await;
    });
    tracing::info!(%addr, "gateway listening");
    Ok(GatewayHandle { addr, stop: Some(stop), task })
}
