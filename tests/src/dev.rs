//! `clickstream dev` as a child process: started with its listeners on port 0, its banner read
//! for the addresses it chose, and its later stdout lines kept for assertions.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
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
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
            .stderr(Stdio::null())
            .spawn()
            .expect("clickstream dev starts");
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
