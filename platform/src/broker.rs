//! The embedded broker: librdkafka's in-process mock cluster, driven from its own thread
//! because the mock handle cannot cross threads.

use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

enum Command {
    CreateTopic { name: String, partitions: i32, done: mpsc::Sender<anyhow::Result<()>> },
    SetUp { up: bool, done: mpsc::Sender<anyhow::Result<()>> },
    RequestErrors { api: RDKafkaApiKey, errors: Vec<RDKafkaRespErr>, done: mpsc::Sender<anyhow::Result<()>> },
    RoundTrip { delay: Duration, done: mpsc::Sender<anyhow::Result<()>> },
    Stop,
}

/// A running mock cluster. Data lives in memory only, about 5 MiB per partition.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap_servers: String,
    commands: Mutex<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl EmbeddedBroker {
    /// Starts a mock cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> anyhow::Result<Self> {
        let (commands, inbox) = mpsc::channel::<Command>();
        let (ready, started) = mpsc::channel::<anyhow::Result<String>>();
        let thread = std::thread::Builder::new().name("embedded-broker".into()).spawn(move || {
            let cluster = match MockCluster::new(brokers) {
                Ok(cluster) => cluster,
                Err(e) => {
                    let _ = ready.send(Err(anyhow::anyhow!("cannot start the mock cluster: {e}")));
                    return;
                }
            };
            let _ = ready.send(Ok(cluster.bootstrap_servers()));
            for command in inbox {
                match command {
                    Command::CreateTopic { name, partitions, done } => {
                        let result = cluster.create_topic(&name, partitions, 1);
                        let _ = done.send(result.with_context(|| format!("creating topic {name}")));
                    }
                    Command::SetUp { up, done } => {
                        let result = (1..=brokers).try_for_each(|id| {
                            if up {
                                cluster.broker_up(id)
                            } else {
                                cluster.broker_down(id)
                            }
                        });
                        let _ = done.send(result.context("switching mock brokers"));
                    }
                    Command::RequestErrors { api, errors, done } => {
                        cluster.request_errors(api, &errors);
                        let _ = done.send(Ok(()));
                    }
                    Command::RoundTrip { delay, done } => {
                        let result = (1..=brokers).try_for_each(|id| cluster.broker_round_trip_time(id, delay));
                        let _ = done.send(result.context("setting the mock round-trip time"));
                    }
                    Command::Stop => break,
                }
            }
        })?;
        let bootstrap_servers = started.recv().context("the mock cluster thread died")??;
        Ok(Self { bootstrap_servers, commands: Mutex::new(commands), thread: Some(thread) })
    }

    /// The `bootstrap.servers` string clients use to reach the mock cluster.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Creates a topic (the mock's admin API does not serve CreateTopics).
    pub fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        self.call(|done| Command::CreateTopic { name: name.to_owned(), partitions, done })
    }

    /// Takes every broker down (connections refused, data kept) or brings them back up.
    pub fn set_available(&self, up: bool) -> anyhow::Result<()> {
        self.call(|done| Command::SetUp { up, done })
    }

    /// Makes the next `count` produce requests fail with a retriable error (not enough replicas).
    pub fn fail_next_produces(&self, count: usize) -> anyhow::Result<()> {
        let errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; count];
        self.inject_request_errors(RDKafkaApiKey::Produce, errors)
    }

    /// Makes the next requests of kind `api` fail with `errors`, one error per request.
    pub fn inject_request_errors(&self, api: RDKafkaApiKey, errors: Vec<RDKafkaRespErr>) -> anyhow::Result<()> {
        self.call(|done| Command::RequestErrors { api, errors, done })
    }

    /// Delays every broker response by `delay` (zero restores normal speed).
    pub fn set_round_trip_time(&self, delay: Duration) -> anyhow::Result<()> {
        self.call(|done| Command::RoundTrip { delay, done })
    }

    fn call(&self, make: impl FnOnce(mpsc::Sender<anyhow::Result<()>>) -> Command) -> anyhow::Result<()> {
        let (done, result) = mpsc::channel();
        self.commands
            .lock()
            .map_err(|_| anyhow::anyhow!("embedded broker lock poisoned"))?
            .send(make(done))
            .context("embedded broker stopped")?;
        result.recv().context("embedded broker stopped")?
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Ok(commands) = self.commands.lock() {
            let _ = commands.send(Command::Stop);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
