//! `clickstream cdc` as a child process, its config file, and reading its topic back: raw
//! records in order, and the product table they build through the enricher's own decoder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickstream_enricher::products::{parse_record, ProductChange};
use rdkafka::Message as _;
use serde_json::{Map, Value};

use crate::kafka::read_until_quiet_with;

/// One record as written: key and value bytes, parsed when JSON (`None` for a null value).
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<Value>,
    pub value: Option<Value>,
    pub raw_key: Option<Vec<u8>>,
    pub raw_value: Option<Vec<u8>>,
}

impl Record {
    /// The Debezium payload, whether or not the `{schema, payload}` wrapper is on.
    pub fn payload(&self) -> Option<&Value> {
        let value = self.value.as_ref()?;
        Some(value.get("payload").unwrap_or(value))
    }

    pub fn op(&self) -> Option<&str> {
        self.payload()?.get("op")?.as_str()
    }
}

/// A `clickstream.toml` for cdc: the broker, the database, `public.<table>` into `topic`.
pub fn write_config(dir: &Path, bootstrap: &str, connection: &str, table: &str, topic: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("cdc-{topic}.toml"));
    let text = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\n\n[cdc]\nconnection = \"{connection}\"\n\
         tables = [\"public.{table}\"]\nheartbeat_interval_ms = 1000\nstatus_interval_ms = 200\n{extra}\n\
         [cdc.admin]\nlisten = \"\"\n\n[cdc.topics]\n\"public.{table}\" = \"{topic}\"\n"
    );
    std::fs::write(&path, text).expect("cdc config");
    path
}

/// One `clickstream cdc` process, its stderr in `log`; SIGKILLed on drop.
#[derive(Debug)]
pub struct CdcProcess {
    child: Child,
    pub log: PathBuf,
}

impl CdcProcess {
    pub fn start(binary: &Path, config: &Path, log: &Path) -> Self {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("cdc log");
        let child = Command::new(binary)
            .args(["cdc", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} cdc: {e}", binary.display()));
        Self { child, log: log.to_owned() }
    }

    /// SIGKILL: nothing is flushed or confirmed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status once the process ends by itself within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CdcProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every record on `topic` from the start, once `done` holds and the topic stays quiet for
/// `quiet`, or when `timeout` passes.
pub fn read_records(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    quiet: Duration,
    done: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let record = |message: &rdkafka::message::BorrowedMessage<'_>| {
        let parse = |bytes: Option<&[u8]>| bytes.and_then(|b| serde_json::from_slice(b).ok());
        Record {
            key: parse(message.key()),
            value: parse(message.payload()),
            raw_key: message.key().map(<[u8]>::to_vec),
            raw_value: message.payload().map(<[u8]>::to_vec),
        }
    };
    read_until_quiet_with(bootstrap, topic, timeout, quiet, record, done)
}

/// The table the records build, through the enricher's own decoder: id → row.
pub fn table_from(records: &[Record]) -> BTreeMap<String, Map<String, Value>> {
    let mut table = BTreeMap::new();
    for record in records {
        let parsed = parse_record(record.raw_key.as_deref(), record.raw_value.as_deref())
            .unwrap_or_else(|e| panic!("the enricher cannot read {record:?}: {e}"));
        match parsed.change {
            ProductChange::Upsert { id, row } => {
                table.insert(id, row);
            }
            ProductChange::Delete { id } => {
                table.remove(&id);
            }
            ProductChange::Truncate => table.clear(),
            ProductChange::Ignore => {}
        }
    }
    table
}
