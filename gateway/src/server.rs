//! Serving: accept loop over HTTP/1 and HTTP/2 with graceful shutdown, and `start`, which
//! wires a config into a running gateway.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::app::{app, AppState};
use crate::config::GatewayConfig;
use crate::metrics::{Metrics, SERVICE_NAME};
use crate::plan::TrackingPlans;
use crate::reload::Reloader;
use crate::routing::Routing;
use crate::sink::{DurableSink, EventSink, KafkaSink};
use crate::spool::Spool;
use crate::suppression::Suppression;
use clickstream_platform::admin::{AdminRoutes, AdminServer};
use clickstream_platform::kafka::TopicCheckError;
use clickstream_platform::telemetry::Telemetry;

/// Connection-level protection for `serve_with`.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time to receive request headers; also closes keep-alive connections idle that long.
    pub header_read_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time to let open requests finish after shutdown begins.
    pub grace: Duration,
}

/// Serves `handler` on `listener` until `shutdown` resolves, then lets open requests finish
/// for up to `grace`.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: impl Future<Output = ()>, grace: Duration)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let options = ServeOptions { header_read_timeout: Duration::from_secs(30), max_connections: 10_000, grace };
    serve_with(listener, handler, shutdown, options).await;
}

/// `serve` with explicit connection limits.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    let graceful = GracefulShutdown::new();
    // Past the cap, clients wait in the kernel's listen backlog instead of costing memory here.
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
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
            drop(slot);
        });
    }
    if tokio::time::timeout(options.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    /// The address it listens on (useful when configured with port 0).
    pub addr: SocketAddr,
    /// The admin listener's address (`/metrics`, `/healthz`, `/readyz`), unless `admin.listen` is empty.
    pub admin_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    reloader: Reloader,
}

impl GatewayHandle {
    /// Drains (`http.drain_delay_secs`), stops accepting, then within `http.shutdown_budget_secs`
    /// finishes in-flight requests, flushes the producer and replays the spool.
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

    /// Reloads sources and routing rules in the running gateway, for SIGHUP handlers.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// A sender that triggers shutdown, for signal handlers.
    pub fn take_stop(&mut self) -> Option<oneshot::Sender<()>> {
        self.stop.take()
    }
}

/// Checks config and topics, connects the producer, opens the spool, binds, and serves in
/// the background.
pub async fn start(loaded: GatewayConfig) -> anyhow::Result<GatewayHandle> {
    let sources = loaded.all_sources()?;
    if sources.is_empty() {
        anyhow::bail!(
            "no sources configured: add at least one [[sources]] entry with a name and write_key, here or in sources_file"
        );
    }
    let config = GatewayConfig { sources, ..loaded.clone() };
    config.check_message_size().map_err(anyhow::Error::msg)?;
    let routing = Routing::new(&config)?;
    let plans = TrackingPlans::new(crate::plan::compile(&config.tracking_plan)?);
    let kafka = config.kafka.clone();
    let mut topics = vec![config.topics.raw.clone(), config.topics.dlq.clone()];
    for topic in config.routing.with_raw_topic(&config.topics.raw).target_topics() {
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    let checked = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        clickstream_platform::kafka::require_topics(&kafka, &names, Duration::from_secs(3))
    })
    .await?;
    match checked {
        Ok(()) => {}
        // A restart during an outage must not stop the spool from taking events (and from
        // replaying what the last run left); the topics are checked again on reconnect by
        // the producer itself.
        Err(error @ TopicCheckError::Unreachable { .. }) if config.spool.enabled => {
            tracing::warn!(%error, "starting without Kafka; events go to the spool until it is reachable");
        }
        Err(error) => return Err(error.into()),
    }
    let telemetry = Arc::new(Telemetry::new(SERVICE_NAME, &config.telemetry)?);
    let kafka_sink = KafkaSink::new(&config)
        .context("creating the Kafka producer")?
        .with_telemetry(telemetry.tracer().cloned(), Metrics::produce_duration_histogram(&telemetry));
    let kafka_stats = kafka_sink.statistics();
    let kafka_sink = Arc::new(kafka_sink);
    let sink: Arc<dyn EventSink> = if config.spool.enabled {
        let spool = Spool::open(&config.spool).with_context(|| format!("opening the spool in {}", config.spool.dir))?;
        let deadline = Duration::from_millis(config.delivery.enqueue_deadline_ms);
        Arc::new(DurableSink::new(kafka_sink, spool, config.delivery.ack, deadline))
    } else {
        kafka_sink
    };
    let listener =
        TcpListener::bind(&config.http.listen).await.with_context(|| format!("binding {}", config.http.listen))?;
    let addr = listener.local_addr()?;
    let budget = Duration::from_secs(config.http.shutdown_budget_secs);
    let drain_delay = Duration::from_secs(config.http.drain_delay_secs);
    let options = ServeOptions {
        header_read_timeout: Duration::from_millis(config.http.header_read_timeout_ms.max(1)),
        max_connections: config.http.max_connections,
        grace: budget,
    };
    let reload_every = Duration::from_secs(config.privacy.suppression_reload_secs.max(1));
    let state = AppState::with_telemetry(config, sink.clone(), telemetry.clone(), routing, plans);
    telemetry.keep(clickstream_platform::kafka_stats::register_kafka_stats(
        telemetry.meter(),
        "producer",
        &kafka_stats,
    ));
    tokio::spawn(AppState::housekeeping(Arc::downgrade(&state.protection)));
    tokio::spawn(Suppression::watch(Arc::downgrade(&state.suppression), reload_every));
    let console = (state.config.console.enabled && !state.config.admin.listen.is_empty())
        .then(|| crate::console::Console::new(state.clone(), addr));
    let admin = match state.config.admin.listen.as_str() {
        "" => None,
        listen => {
            let readiness_state = state.clone();
            let readiness = Arc::new(move || readiness_state.readiness());
            let routes = console.clone().map(|console| console as Arc<dyn AdminRoutes>);
            let server = AdminServer::start_with_routes(listen, telemetry.clone(), readiness, routes)
                .await
                .with_context(|| format!("binding the admin listener {listen}"))?;
            Some(server)
        }
    };
    let admin_addr = admin.as_ref().map(|a| a.addr);
    start_routing(&state).await;
    let reloader = Reloader::new(&state, loaded);
    let sources_watch = tokio::spawn(crate::reload::watch_sources_file(
        reloader.clone(),
        Duration::from_secs(state.config.sources_reload_secs.max(1)),
    ));
    let lifecycle = state.clone();
    let handler = Arc::new(app(state));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Boxed: hyper keeps room for one in-flight request future in every connection, idle
        // or not, so an unboxed handler future (kilobytes of state machine) would cost that
        // much per idle keep-alive connection. A box costs one allocation per request.
        let serve_handler = move |request, peer| -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>> {
            let handler = handler.clone();
            Box::pin(async move { handler.handle(request, peer).await })
        };
        let closed_at = std::sync::OnceLock::new();
        let drained = async {
            let _ = stopped.await;
            lifecycle.start_draining();
            tracing::info!(?drain_delay, ?budget, "shutdown: /readyz answers 503; serving through the drain delay");
            tokio::time::sleep(drain_delay).await;
            let _ = closed_at.set(tokio::time::Instant::now());
        };
        serve_with(listener, serve_handler, drained, options).await;
        sources_watch.abort();
        // One budget from the moment the listener closed; in-flight requests used part of it.
        let deadline = closed_at.get().copied().unwrap_or_else(tokio::time::Instant::now) + budget;
        sink.shutdown(deadline).await;
        if let Some(console) = console {
            console.shutdown();
        }
        if let Some(admin) = admin {
            admin.shutdown().await;
        }
        // Exporters block while they flush over HTTP; keep that off the async workers.
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        tracing::info!("gateway stopped");
    });
    tracing::info!(%addr, "gateway listening");
    Ok(GatewayHandle { addr, admin_addr, stop: Some(stop), task, reloader })
}

/// Reads the cluster's topic list before serving when the routes need it (dynamic topics,
/// random partitions, overflow), then keeps it fresh; and forgets idle hot keys.
async fn start_routing(state: &AppState) {
    tokio::spawn(Routing::housekeeping(Arc::downgrade(&state.routing)));
    if !state.routing.active().router().needs_topic_metadata() {
        return;
    }
    let (catalog, kafka) = (state.routing.catalog().clone(), state.config.kafka.clone());
    let first = tokio::task::spawn_blocking(move || catalog.refresh_blocking(&kafka, Duration::from_secs(3))).await;
    if !matches!(first, Ok(Ok(_))) {
        tracing::warn!("cannot read the topic list yet; dynamic topics use the default route until it can");
    }
    let every = Duration::from_secs(state.config.routing.topic_refresh_secs);
    state.routing.catalog().spawn_refresher(state.config.kafka.clone(), every);
}
