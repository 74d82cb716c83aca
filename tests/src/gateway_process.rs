//! A `clickstream gateway` process for drills that kill, stop and restart it: its config file,
//! its ports, its log, and what its spool directory holds.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::WRITE_KEY;

/// Where one gateway process keeps its config, log and spool, and where it listens.
#[derive(Debug)]
pub struct GatewayProcess {
    binary: PathBuf,
    pub config: PathBuf,
    pub spool: PathBuf,
    /// `http://127.0.0.1:PORT` of the public listener.
    pub url: String,
    /// `http://127.0.0.1:PORT` of the admin listener (`/metrics`, `/readyz`).
    pub admin_url: String,
    log: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port()
}

impl GatewayProcess {
    /// Writes a config in `dir` (ack=kafka, a spool, fast health checks) with `http_extra`
    /// lines appended to its `[http]` table; does not start it.
    pub fn configure(binary: &Path, dir: &Path, bootstrap: &str, raw: &str, dlq: &str, http_extra: &str) -> Self {
        let (port, admin_port) = (free_port(), free_port());
        let spool = dir.join("spool");
        let config = dir.join("clickstream.toml");
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n{http_extra}\n\
                 [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
                 [kafka]\nbootstrap_servers = \"{bootstrap}\"\n\
                 [producer]\nmessage_timeout_ms = 3000\n\
                 [delivery]\nack = \"kafka\"\nkafka_health_interval_ms = 250\n\
                 [topics]\nraw = \"{raw}\"\ndlq = \"{dlq}\"\n\
                 [spool]\ndir = \"{}\"\n\
                 [[sources]]\nname = \"drill\"\nwrite_key = \"{WRITE_KEY}\"\n",
                spool.display()
            ),
        )
        .expect("config");
        Self {
            binary: binary.to_owned(),
            config,
            spool,
            url: format!("http://127.0.0.1:{port}"),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            log: dir.join("gateway.log"),
            child: None,
        }
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("gateway log");
        let child = Command::new(&self.binary)
            .args(["gateway", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("clickstream gateway starts");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM, as Kubernetes and Docker stop a container; the child is reaped by `wait_exit`.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().expect("started").id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let child = self.child.as_mut().expect("started");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `bytes` of the gateway's log.
    pub fn log_tail(&self, bytes: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut start = log.len().saturating_sub(bytes);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_owned()
    }

    /// Waits until `/readyz` (public port) reports `wanted` as its status.
    pub async fn wait_for_status(&self, wanted: &str, timeout: Duration) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(response) = client.get(format!("{}/readyz", self.url)).send().await {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if body["status"] == wanted {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "gateway not {wanted} within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `clickstream_spool_events` gauge on the admin port; `None` while it does not answer.
    pub async fn spool_gauge(&self) -> Option<u64> {
        let text = reqwest::get(format!("{}/metrics", self.admin_url)).await.ok()?.text().await.ok()?;
        let value = text.lines().find_map(|l| l.strip_prefix("clickstream_spool_events "))?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    }

    /// Waits until the spool gauge is above zero, and returns it.
    pub async fn wait_for_spooled_events(&self, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(events) = self.spool_gauge().await.filter(|events| *events > 0) {
                return events;
            }
            assert!(tokio::time::Instant::now() < deadline, "no event reached the spool within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Records waiting in the spool directory, as a gateway opening it would count them; it
    /// also proves no process holds the directory's lock.
    pub fn spooled_records(&self) -> u64 {
        let config =
            clickstream_gateway::config::SpoolConfig { dir: self.spool.display().to_string(), ..Default::default() };
        clickstream_gateway::spool::Spool::open(&config).expect("the spool directory opens").stats().records
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
