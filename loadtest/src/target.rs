//! What is under test: the gateway (a `clickstream gateway` process, optionally pinned with
//! taskset), the gateway over a null sink, the hyper baseline, an already running server, or
//! rdkafka producing straight to Kafka. Starting a target gives an `Endpoint` to send to.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::producer::{FutureProducer, Producer as _};
use serde::Serialize;

use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::GatewayConfig;

use crate::cpu::count_cpus;
use crate::servers::{self, InProcessServer, ServerKind};
use crate::transport::Endpoint;

/// The write key added when the gateway config names no source.
pub const DEFAULT_WRITE_KEY: &str = "loadtest-write-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// The real gateway with its Kafka sink.
    Gateway,
    /// The gateway's handler with a sink that drops records: its ceiling without Kafka.
    GatewayNull,
    /// A minimal hyper server answering 200: the HTTP ceiling.
    HyperBaseline,
    /// The same events produced straight to Kafka with rdkafka: the Kafka ceiling.
    RawKafka,
}

impl TargetKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::GatewayNull => "gateway-null",
            Self::HyperBaseline => "hyper-baseline",
            Self::RawKafka => "raw-kafka",
        }
    }

    /// Whether the target looks at what it is sent. The hyper baseline answers 200 to
    /// anything, so its requests may come from a ring (`RequestSource::ring`).
    pub fn reads_bodies(self) -> bool {
        self != Self::HyperBaseline
    }

    fn server_kind(self) -> Option<ServerKind> {
        match self {
            Self::GatewayNull => Some(ServerKind::GatewayNull),
            Self::HyperBaseline => Some(ServerKind::HyperBaseline),
            Self::Gateway | Self::RawKafka => None,
        }
    }
}

impl std::str::FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Gateway, Self::GatewayNull, Self::HyperBaseline, Self::RawKafka]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown target {s:?}: use gateway, gateway-null, hyper-baseline or raw-kafka"))
    }
}

/// How to get a target running.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub kind: TargetKind,
    /// Send to this running server (`http://host:port`) instead of starting one.
    pub url: Option<String>,
    /// The config of the gateway to start; raw-kafka copies its producer settings and topic.
    pub gateway: GatewayConfig,
    /// CPUs to pin a started server to with `taskset -c` (for example `1`).
    pub cpus: Option<String>,
    /// The `clickstream` binary, to start servers as their own processes; `None` runs them in
    /// this process (tests).
    pub binary: Option<PathBuf>,
}

impl TargetSpec {
    /// The write key requests carry: the first configured source's.
    pub fn write_key(&self) -> String {
        self.gateway.sources.first().map_or_else(|| DEFAULT_WRITE_KEY.to_owned(), |s| s.write_key.clone())
    }

    fn gateway_config(&self, listen: &str) -> GatewayConfig {
        let mut config = self.gateway.clone();
        config.http.listen = listen.to_owned();
        // `overload` samples the spool gauge from the port it loads, not the admin listener.
        config.http.public_metrics = true;
        if config.sources.is_empty() {
            config.sources.push(SourceConfig {
                name: "loadtest".into(),
                write_key: DEFAULT_WRITE_KEY.into(),
                allowed_origins: vec!["*".into()],
            });
        }
        config
    }
}

/// Producer settings, so each figure says which ack mode and linger it was measured with.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaInfo {
    /// The gateway's `delivery.ack` (when a 200 is sent: `kafka`, `spool` or `none`); none
    /// for raw-kafka, which always waits for the delivery report.
    pub gateway_ack: Option<String>,
    pub bootstrap_servers: String,
    pub topic: String,
    pub acks: String,
    pub linger_ms: u32,
    pub compression: String,
    pub idempotence: bool,
}

impl KafkaInfo {
    pub fn of(config: &GatewayConfig, kind: TargetKind) -> Self {
        let p = &config.producer;
        let gateway_ack = (kind == TargetKind::Gateway)
            .then(|| serde_json::to_value(config.delivery.ack).ok())
            .flatten()
            .and_then(|v| v.as_str().map(str::to_owned));
        Self {
            gateway_ack,
            bootstrap_servers: config.kafka.bootstrap_servers.clone(),
            topic: config.topics.raw.clone(),
            acks: p.acks.clone(),
            linger_ms: p.linger_ms,
            compression: p.compression_type.clone(),
            idempotence: p.enable_idempotence,
        }
    }

    /// `ack=kafka, acks=all, linger.ms=5`.
    pub fn label(&self) -> String {
        let gateway_ack = self.gateway_ack.as_deref().map_or(String::new(), |a| format!("ack={a}, "));
        format!("{gateway_ack}acks={}, linger.ms={}", self.acks, self.linger_ms)
    }
}

/// What the report says about a target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub kind: TargetKind,
    pub url: Option<String>,
    /// CPUs the server was pinned to, if it was.
    pub cpus: Option<String>,
    /// How many cores the server could use, when known: the basis of "per core" figures.
    pub cores: Option<usize>,
    /// Producer settings, for targets that write to Kafka.
    pub kafka: Option<KafkaInfo>,
    pub in_process: bool,
}

/// A running target; stops what it started when dropped.
#[derive(Debug)]
pub struct Target {
    pub info: TargetInfo,
    pub endpoint: Endpoint,
    /// The server process, for CPU accounting.
    pub server_pid: Option<u32>,
    _running: Running,
}

#[derive(Debug)]
enum Running {
    Nothing,
    Process { child: tokio::process::Child, _dir: tempfile::TempDir },
    InProcess { _server: InProcessServer },
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Self::Process { child, .. } = self {
            let _ = child.start_kill();
        }
    }
}

impl Target {
    pub async fn start(spec: &TargetSpec) -> anyhow::Result<Self> {
        let kafka = matches!(spec.kind, TargetKind::Gateway | TargetKind::RawKafka)
            .then(|| KafkaInfo::of(&spec.gateway, spec.kind));
        let mut info =
            TargetInfo { kind: spec.kind, url: spec.url.clone(), cpus: None, cores: None, kafka, in_process: false };
        if spec.kind == TargetKind::RawKafka {
            let producer = raw_producer(&spec.gateway).await?;
            info.in_process = true;
            if let Some(cpus) = &spec.cpus {
                pin_producer_threads(cpus).await?;
                info.cpus = Some(cpus.clone());
                info.cores = count_cpus(cpus);
            }
            let topic: Arc<str> = spec.gateway.topics.raw.as_str().into();
            return Ok(Self {
                info,
                endpoint: Endpoint::Kafka { producer, topic },
                server_pid: None,
                _running: Running::Nothing,
            });
        }
        if let Some(url) = &spec.url {
            let addr = resolve(url)?;
            wait_ready(addr, Duration::from_secs(10), None).await?;
            return Ok(Self { info, endpoint: Endpoint::Http { addr }, server_pid: None, _running: Running::Nothing });
        }
        let Some(binary) = &spec.binary else {
            let kind = spec.kind.server_kind().context("the Kafka gateway runs as a process: give the binary")?;
            let server = servers::start(kind, &spec.gateway_config("127.0.0.1:0"), "127.0.0.1:0").await?;
            info.in_process = true;
            info.url = Some(format!("http://{}", server.addr));
            let endpoint = Endpoint::Http { addr: server.addr };
            return Ok(Self { info, endpoint, server_pid: None, _running: Running::InProcess { _server: server } });
        };
        let addr = free_addr()?;
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("gateway.toml");
        let mut config = spec.gateway_config(&addr.to_string());
        // A relative spool directory would land wherever the harness runs and outlive it.
        if std::path::Path::new(&config.spool.dir).is_relative() {
            config.spool.dir = dir.path().join(&config.spool.dir).display().to_string();
        }
        // The harness reads only the public port; a fixed admin port could clash with another gateway.
        config.admin.listen = "127.0.0.1:0".into();
        std::fs::write(&config_path, toml::to_string(&config)?)?;
        let log_path = dir.path().join("server.log");
        let mut args: Vec<String> = Vec::new();
        let program = match &spec.cpus {
            Some(cpus) => {
                args.extend(["-c".into(), cpus.clone(), binary.display().to_string()]);
                info.cpus = Some(cpus.clone());
                info.cores = count_cpus(cpus);
                PathBuf::from("taskset")
            }
            None => binary.clone(),
        };
        match spec.kind.server_kind() {
            None => args.extend(["gateway".into(), "--config".into(), config_path.display().to_string()]),
            Some(kind) => args.extend(
                ["loadtest", "serve", "--kind", kind.as_str(), "--listen", &addr.to_string(), "--config"]
                    .map(str::to_owned)
                    .into_iter()
                    .chain([config_path.display().to_string()]),
            ),
        }
        let mut command = tokio::process::Command::new(&program);
        let log = std::fs::File::create(&log_path)?;
        command.args(&args).stdout(log.try_clone()?).stderr(log);
        command.kill_on_drop(true);
        // The config file already holds every layer; stray overrides must not change it.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("CLICKSTREAM_")) {
            command.env_remove(name);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} (for pinning, taskset comes with util-linux)", program.display()))?;
        let server_pid = child.id();
        info.url = Some(format!("http://{addr}"));
        let running = Running::Process { child, _dir: dir };
        wait_ready(addr, Duration::from_secs(30), Some(&log_path)).await?;
        Ok(Self { info, endpoint: Endpoint::Http { addr }, server_pid, _running: running })
    }
}

/// An rdkafka producer with the gateway's producer settings, checked against the topic.
async fn raw_producer(config: &GatewayConfig) -> anyhow::Result<FutureProducer> {
    let kafka = config.kafka.clone();
    let topic = config.topics.raw.clone();
    tokio::task::spawn_blocking(move || {
        clickstream_platform::kafka::require_topics(&kafka, &[topic.as_str()], Duration::from_secs(10))
    })
    .await??;
    let producer: FutureProducer =
        config.producer_client_config().create().context("creating the raw-kafka producer")?;
    // Connect to the brokers now, so their threads exist when they are pinned.
    let client = producer.clone();
    let topic = config.topics.raw.clone();
    tokio::task::spawn_blocking(move || client.client().fetch_metadata(Some(&topic), Duration::from_secs(10)))
        .await?
        .context("fetching metadata with the raw-kafka producer")?;
    Ok(producer)
}

/// Pins librdkafka's threads (`rdk:...`, and rdkafka's delivery poller) of this process to `cpus`, so the raw-kafka
/// baseline's producer works on the same core the gateway gets; only the `produce` calls stay
/// on the load generator's core.
async fn pin_producer_threads(cpus: &str) -> anyhow::Result<()> {
    let mut pinned = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let task = entry?.path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let Some(tid) = task.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        if name.starts_with("rdk:") || name.starts_with("producer poll") {
            let status = tokio::process::Command::new("taskset")
                .args(["-p", "-c", cpus, &tid])
                .stdout(std::process::Stdio::null())
                .status()
                .await
                .context("running taskset (util-linux) to pin the producer threads")?;
            anyhow::ensure!(status.success(), "taskset could not pin thread {tid} to CPU {cpus}");
            pinned += 1;
        }
    }
    anyhow::ensure!(pinned > 0, "found no librdkafka thread to pin");
    Ok(())
}

fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("http://").context("only http:// URLs can be load-tested")?;
    let host = rest.split('/').next().unwrap_or(rest);
    std::net::ToSocketAddrs::to_socket_addrs(host)
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to no address"))
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits until `GET /readyz` answers 200.
async fn wait_ready(addr: SocketAddr, within: Duration, log: Option<&std::path::Path>) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if get_status(addr, "/readyz").await == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = log.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
            anyhow::bail!("the server at {addr} was not ready within {within:?}; its output:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    get(addr, path).await.map(|(status, _)| status)
}

/// `GET path` on a fresh connection: the status and the body, or `None` when it fails.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Option<(u16, bytes::Bytes)> {
    use http_body_util::{BodyExt as _, Empty};
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    let request = http::Request::get(path).header("host", addr.to_string()).body(Empty::<bytes::Bytes>::new()).ok()?;
    let response = tokio::time::timeout(Duration::from_secs(2), sender.send_request(request)).await.ok()?.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}
