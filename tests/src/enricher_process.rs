//! The `clickstream enricher` binary as a child process for kill and scale-out tests, and the
//! watchers those tests share: output and committed-offset progress, and reading a topic back
//! until it stays quiet.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickstream_enricher::config::Guarantee;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use serde_json::Value;

use crate::enricher::EnricherTopics;
use crate::kafka::read_until_quiet_with;

/// One `clickstream enricher` process, its stderr appended to `log`; SIGKILLed on drop, so a
/// failing test leaves no enricher behind.
#[derive(Debug)]
pub struct EnricherProcess {
    child: Child,
    pub log: PathBuf,
}

impl EnricherProcess {
    /// Starts `binary enricher` on `topics`, with `extra` `--set` flags after the topics' own.
    pub fn start(
        binary: &Path,
        topics: &EnricherTopics,
        bootstrap: &str,
        guarantee: Guarantee,
        extra: &[&str],
        log: &Path,
    ) -> Self {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("enricher log file");
        let mut command = Command::new(binary);
        command.arg("enricher");
        for flag in topics.flags(bootstrap, guarantee).iter().map(String::as_str).chain(extra.iter().copied()) {
            command.args(["--set", flag]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} enricher: {e}", binary.display()));
        Self { child, log: log.to_owned() }
    }

    /// SIGKILL, as a crash or an OOM kill would: nothing is committed or flushed.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, as an orchestrator stops a pod, then waits for the process to exit (it commits
    /// and leaves its group first); returns how long that took.
    pub fn terminate(&mut self, timeout: Duration) -> Duration {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success());
        assert!(sent, "could not send SIGTERM to the enricher ({pid})");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "the enricher exited with {status} after SIGTERM:\n{}", self.log_tail());
                return started.elapsed();
            }
            assert!(started.elapsed() < timeout, "the enricher did not exit within {timeout:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last 40 lines of this instance's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Lines of this instance's log that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for EnricherProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last 40 lines of `text`.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Records written to `topic` so far, summed over its first `partitions` partitions.
pub fn written_so_far(watcher: &BaseConsumer, topic: &str, partitions: i32) -> i64 {
    loop {
        let highs: Result<Vec<i64>, _> = (0..partitions)
            .map(|p| watcher.fetch_watermarks(topic, p, Duration::from_secs(5)).map(|(_, high)| high))
            .collect();
        match highs {
            Ok(highs) => return highs.iter().sum(),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A client that reads `group`'s committed offsets without joining the group.
pub fn group_reader(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group reader")
}

/// Input offsets the group of `group_reader` has committed, summed over `topic`'s first
/// `partitions` partitions.
pub fn committed_so_far(group_reader: &BaseConsumer, topic: &str, partitions: i32) -> i64 {
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    loop {
        if let Ok(committed) = group_reader.committed_offsets(list.clone(), Duration::from_secs(5)) {
            return committed.elements().iter().filter_map(|e| e.offset().to_raw()).filter(|o| *o > 0).sum();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads every JSON value on `topic` from the start, until `done` holds for what was read and
/// the topic then stays quiet for two seconds, or `timeout` passes (the caller's assertions
/// then say what is missing).
pub fn read_until_quiet(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    done: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let json = |message: &rdkafka::message::BorrowedMessage<'_>| {
        serde_json::from_slice(message.payload().unwrap_or_default()).expect("json")
    };
    read_until_quiet_with(bootstrap, topic, timeout, Duration::from_secs(2), json, done)
}

/// How many times each `messageId` appears among `values`.
pub fn message_id_counts(values: &[Value]) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for value in values {
        *counts.entry(value["messageId"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    counts
}
