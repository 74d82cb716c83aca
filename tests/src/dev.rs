//! `clickstream dev` as a child process: started with its listeners on port 0, its banner read
//! for the addresses it chose, its later stdout lines kept for assertions, and its log shown
//! when a test fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `dev`, killed on drop.
#[derive(Debug)]
pub struct DevProcess {
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    pub printed: Vec<String>,
    /// The gateway's base URL, `http://127.0.0.1:PORT`.
    pub gateway: String,
    /// The dev admin listener's base URL (broker switch, demo shop).
    pub admin: String,
    /// The broker's `bootstrap.servers`.
    pub bootstrap: String,
    /// The last lines of its log (stderr), printed if the test panics.
    log: Arc<Mutex<VecDeque<String>>>,
}

/// How many log lines a failed test shows: enough for a startup and a rebalance or two.
const LOG_LINES_KEPT: usize = 200;

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let lines: Vec<&str> = log.iter().map(String::as_str).collect();
            eprintln!(
                "--- the last {} lines of dev's log ---\n{}\n--- end of dev's log ---",
                lines.len(),
                lines.join("\n")
            );
        }
    }
}

impl DevProcess {
    /// Runs `binary dev --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 ARGS` and waits up to
    /// 60 s for its banner to name the gateway, admin and Kafka addresses.
    pub fn start(binary: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args(["dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("CLICKSTREAM_CONFIG")
            .stdout(Stdio::piped())
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("clickstream dev starts");
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES_KEPT)));
        let stderr = child.stderr.take().expect("stderr");
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if kept.len() == LOG_LINES_KEPT {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut dev = Self {
            child,
            lines,
            printed: Vec::new(),
            gateway: String::new(),
            admin: String::new(),
            bootstrap: String::new(),
            log,
        };
        while dev.gateway.is_empty() || dev.admin.is_empty() || dev.bootstrap.is_empty() {
            let line = dev.next_line(Duration::from_secs(60), "its banner");
            let word = |prefix: &str| {
                line.trim().strip_prefix(prefix).and_then(|rest| rest.split_whitespace().next()).map(str::to_owned)
            };
            if let Some(url) = word("gateway") {
                dev.gateway = url;
            } else if let Some(url) = word("admin") {
                dev.admin = url;
            } else if let Some(kafka) = word("kafka") {
                dev.bootstrap = kafka.trim_start_matches("bootstrap.servers=").to_owned();
            }
        }
        dev
    }

    /// Reads stdout until a line satisfies `done`, and returns that line.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.next_line(deadline.saturating_duration_since(Instant::now()), what);
            if done(&line) {
                return line;
            }
        }
    }

    /// Stops `dev` as Ctrl-C would (SIGTERM), so its enricher leaves its consumer group, and
    /// waits up to 30 s for it to exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success());
        assert!(sent, "could not send SIGTERM to dev ({pid})");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "dev did not exit within 30 s of SIGTERM:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when some line read so far, trimmed, equals `text`.
    pub fn has_printed(&self, text: &str) -> bool {
        self.printed.iter().any(|l| l.trim() == text)
    }

    /// Everything read so far, for assertion messages.
    pub fn output(&self) -> String {
        self.printed.join("\n")
    }

    fn next_line(&mut self, timeout: Duration, what: &str) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.printed.push(line.clone());
                line
            }
            Err(_) => panic!(
                "dev printed no more lines while waiting for {what} (exited or slow); so far:\n{}",
                self.output()
            ),
        }
    }
}
