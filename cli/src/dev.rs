//! `clickstream dev`: embedded broker + topics + gateway + demo in one process, with an admin
//! port that takes the broker down and up to try outage behaviour by hand, and serves the demo
//! shop page that sends events through the JS tracker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clickstream_gateway::config::{SourceConfig, SpoolConfig};
use clickstream_gateway::server::serve;
use clickstream_platform::broker::EmbeddedBroker;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::args::DevArgs;
use crate::commands::{create_topics, print_outcomes, shutdown_signal};

/// The write key `dev` configures when the config names no source.
pub const DEMO_WRITE_KEY: &str = "demo-write-key";

pub async fn run(args: &DevArgs) -> anyhow::Result<()> {
    // Listen for Ctrl-C and SIGTERM from the start: a signal before the listener exists kills
    // the process outright, and its enricher would stay in the consumer group until its
    // session times out, stalling the next `dev` on the same broker.
    let shutdown = tokio::spawn(shutdown_signal());
    let mut config = args.config.load()?;
    if config.sources.is_empty() {
        config.sources.push(SourceConfig {
            name: "demo".into(),
            write_key: DEMO_WRITE_KEY.into(),
            allowed_origins: vec!["*".into()],
        });
    }
    if config.spool.dir == SpoolConfig::default().dir {
        // The embedded broker forgets everything on exit, so a spool that outlives dev would
        // replay into topics that no longer exist.
        config.spool.dir =
            std::env::temp_dir().join(format!("clickstream-dev-spool-{}", std::process::id())).display().to_string();
    }
    // A local stack: the metrics page on the gateway's own port is handy, and no load
    // balancer needs time to stop sending traffic before the listener closes.
    config.http.public_metrics = true;
    if config.http.drain_delay_secs == clickstream_gateway::config::DEFAULT_DRAIN_DELAY_SECS {
        config.http.drain_delay_secs = 0;
    }
    if config.admin.listen == clickstream_platform::telemetry::DEFAULT_ADMIN_LISTEN {
        // Several dev stacks (and the browser tests) run side by side; the metrics listener
        // takes any free port unless one is named, and is printed below.
        config.admin.listen = "127.0.0.1:0".into();
    }
    let mut enricher_config: clickstream_enricher::EnricherConfig = args.config.load_as()?;
    let broker = if args.config.kafka_brokers.is_some() {
        // The same topics `topics apply` creates without `--file`: the gateway's and the
        // enricher's. Drift is reported and left alone, as there.
        let specs = crate::enricher::topic_specs(&config, &enricher_config);
        println!("topics on {}:", config.kafka.bootstrap_servers);
        let outcomes = clickstream_platform::topics::apply(&config.kafka, &specs, Duration::from_secs(15)).await?;
        if print_outcomes(&outcomes) {
            println!("some topics differ from the config; dev uses them as they are");
        }
        None
    } else {
        let broker = EmbeddedBroker::start(1)?;
        create_topics(&broker, &config)?;
        config.kafka.bootstrap_servers = broker.bootstrap_servers().to_owned();
        Some(Arc::new(broker))
    };
    enricher_config.kafka = config.kafka.clone();
    let catalog = clickstream_enricher::products::parse_catalog(crate::demo::CATALOG, false, "sample catalog")?;
    let (kafka, products_topic) = (config.kafka.clone(), enricher_config.topics.products.clone());
    tokio::task::spawn_blocking(move || {
        // Valid since the epoch: the event-time join then finds it for any event sent to dev,
        // whatever timestamp its client gave it.
        clickstream_enricher::products::publish_catalog(
            &kafka,
            &products_topic,
            &catalog,
            Some(clickstream_enricher::products::VALID_SINCE_THE_EPOCH_MS),
        )
    })
    .await??;
    let enriched_topic = enricher_config.enricher.topics.enriched.clone();
    let enricher_inputs = enricher_config.input_topics().join(", ");
    if enricher_config.enricher.admin.listen == clickstream_enricher::config::DEFAULT_ADMIN_LISTEN {
        enricher_config.enricher.admin.listen = "127.0.0.1:0".into();
    }
    if broker.is_some() && enricher_config.enricher.threads == clickstream_enricher::config::DEFAULT_THREADS {
        // One group member on the mock cluster: when a follower's SyncGroup reaches it before
        // the leader's, it answers "invalid request", and the rejoin that follows can wait out
        // the 300 s rebalance timeout with every member waiting. Seen in about 1 in 10 starts.
        enricher_config.enricher.threads = 1;
    }
    let enricher = crate::enricher::start(enricher_config).await?;
    let write_key = config.sources[0].write_key.clone();
    let (bootstrap, raw_topic) = (config.kafka.bootstrap_servers.clone(), config.topics.raw.clone());
    let console_enabled = config.console.enabled;
    let mut gateway = clickstream_gateway::start(config).await?;
    let admin = TcpListener::bind(&args.admin_listen).await?;
    let admin_addr = admin.local_addr()?;
    let admin_broker = broker.clone();
    let url = format!("http://{}", gateway.addr);
    let console = gateway.admin_addr.filter(|_| console_enabled).map(|admin| format!("http://{admin}/console"));
    let shop = Bytes::from(crate::shop::page(&url, &write_key, console.as_deref())?);
    let admin_task = tokio::spawn(serve(
        admin,
        move |request, _peer| admin_handle(admin_broker.clone(), shop.clone(), request),
        std::future::pending(),
        Duration::from_secs(1),
    ));

    println!("\n  clickstream dev is running");
    println!("  gateway      {url}");
    println!("  write key    {write_key}");
    println!("  kafka        bootstrap.servers={bootstrap}");
    println!("  enricher     {enricher_inputs} -> {enriched_topic} (product join, sessions, windows)");
    println!("  admin        http://{admin_addr}  (POST /dev/broker/down, POST /dev/broker/up)");
    println!("  demo shop    http://{admin_addr}/demo  (product clicks send events through {url}/t.js)");
    if let Some(console) = &console {
        println!("  console      {console}  (live events, rejected events, rates, install snippets)");
    }
    if let Some(metrics) = gateway.admin_addr {
        println!("  metrics      http://{metrics}/metrics  (also /healthz, /readyz)");
    }
    if let Some(enricher_admin) = &enricher.admin {
        println!("  metrics      http://{}/metrics  (the enricher's; also /healthz, /readyz)", enricher_admin.addr);
    }
    if broker.is_some() {
        println!("\n  !! EMBEDDED BROKER: librdkafka's mock cluster. Data lives IN MEMORY ONLY and is lost");
        println!("  !! on exit, and the mock keeps only about 5 MiB per partition (older data is dropped).");
        println!("  !! Use --kafka-brokers HOST:PORT for a real broker.");
    }
    println!("\n  try:  curl -u {write_key}: -H 'content-type: application/json' \\");
    println!("          -d '{{\"batch\":[{{\"type\":\"track\",\"event\":\"Product Viewed\",\"anonymousId\":\"a1\",\"properties\":{{\"product_id\":\"p1\"}}}}]}}' \\");
    println!("          {url}/v1/batch");
    println!("        clickstream tail --kafka-brokers {bootstrap} --topic {raw_topic}");
    println!(
        "        clickstream tail --kafka-brokers {bootstrap} --topic {enriched_topic}   (enriched by the enricher)\n"
    );

    if !args.no_demo {
        if let Err(error) = crate::demo::run(&url, &write_key, &bootstrap, &enriched_topic).await {
            println!("  demo failed: {error:#}");
        }
    }
    let stop = gateway.take_stop();
    let _ = shutdown.await;
    println!("stopping");
    if let Some(stop) = stop {
        let _ = stop.send(());
    }
    gateway.wait().await;
    enricher.stop().await?;
    admin_task.abort();
    drop(broker);
    Ok(())
}

async fn admin_handle(
    broker: Option<Arc<EmbeddedBroker>>,
    shop: Bytes,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let up = match (request.method(), request.uri().path()) {
        (&Method::POST, "/dev/broker/down") => false,
        (&Method::POST, "/dev/broker/up") => true,
        (&Method::GET, "/demo") => {
            let mut response = Response::new(Full::new(shop));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=utf-8"));
            return response;
        }
        _ => return text(StatusCode::NOT_FOUND, "try GET /demo, POST /dev/broker/down or /dev/broker/up\n"),
    };
    let Some(broker) = broker else {
        return text(StatusCode::CONFLICT, "dev is using an external broker; only the embedded one can be switched\n");
    };
    match tokio::task::spawn_blocking(move || broker.set_available(up)).await {
        Ok(Ok(())) => text(StatusCode::OK, if up { "broker up\n" } else { "broker down\n" }),
        Ok(Err(error)) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error:#}\n")),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}
