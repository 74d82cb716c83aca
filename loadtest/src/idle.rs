//! Idle-connection memory: the resident memory a server process adds per keep-alive HTTP/1.1
//! connection that sent one request and then went quiet, as a crowd of browsers between page
//! views does. The target runs as its own process, so its RSS is its own, and the figure is
//! set beside hyper-baseline's.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use serde::Serialize;

use crate::payload::{Generator, Protocol};
use crate::runner::{RunOptions, Session};
use crate::target::{Target, TargetKind, TargetSpec};
use crate::transport::Connection;

/// Connections opened at once: a burst of tens of thousands of SYNs would overflow the
/// listen backlog and stall on SYN retries, which measures the kernel, not the server.
const OPEN_AT_ONCE: usize = 128;
/// File descriptors the processes need besides the connections (logs, sockets, librdkafka).
pub(crate) const FD_HEADROOM: u64 = 512;

/// What one target's idle connections cost.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub target: TargetKind,
    pub requested: usize,
    /// Connections that answered their one request with a 2xx.
    pub answered: usize,
    /// Connections still open when the second RSS was read.
    pub still_open: usize,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// (after − before) / still open connections.
    pub bytes_per_connection: f64,
}

/// Resident memory of process `pid`, from `VmRSS` in /proc/PID/status.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Raises this process's open-file limit (which started servers inherit) to at least `needed`,
/// up to the hard limit; fails with what to do when the hard limit is too low.
pub fn raise_fd_limit(needed: u64) -> anyhow::Result<()> {
    let (soft, hard) = fd_limits().context("reading Max open files from /proc/self/limits")?;
    if soft >= needed {
        return Ok(());
    }
    anyhow::ensure!(
        hard >= needed,
        "{needed} file descriptors are needed but the hard limit is {hard}: raise it (as root, `ulimit -Hn {needed}` \
         in the shell that runs this, or `nofile` in /etc/security/limits.conf) and try again"
    );
    // The limit is set with util-linux's prlimit because this workspace forbids the unsafe
    // setrlimit call.
    let soft = if hard == u64::MAX { needed } else { hard };
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string(), &format!("--nofile={soft}:")])
        .status()
        .context("running prlimit (util-linux) to raise the open-file limit")?;
    anyhow::ensure!(
        status.success(),
        "prlimit could not raise the open-file limit to {soft}; run `ulimit -n {soft}` first"
    );
    Ok(())
}

fn fd_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace().map(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    Some((numbers.next()?, numbers.next()?))
}

/// Starts `spec`'s target as its own process, reads its RSS, opens `connections` keep-alive
/// connections that each send one request, lets the server settle, and reads its RSS again.
pub async fn measure(
    spec: &TargetSpec,
    options: &RunOptions,
    connections: usize,
    settle: Duration,
) -> anyhow::Result<IdleResult> {
    anyhow::ensure!(spec.kind != TargetKind::RawKafka, "raw-kafka has no HTTP connections to hold open");
    anyhow::ensure!(spec.url.is_none(), "idle-connections starts its target itself, to read its memory; drop --url");
    anyhow::ensure!(
        spec.binary.is_some(),
        "idle-connections needs the clickstream binary, to run the target as its own process"
    );
    raise_fd_limit(connections as u64 + FD_HEADROOM)?;
    let mut spec = spec.clone();
    // The default cap would hold later connections in the listen backlog, unserved.
    let cap = &mut spec.gateway.http.max_connections;
    *cap = (*cap).max(connections + 64);
    let target = Target::start(&spec).await?;
    let pid = target.server_pid.context("the target runs as a process, so its pid is known")?;
    tokio::time::sleep(settle).await;
    let rss_before_bytes = rss_bytes(pid).context("reading the target's VmRSS")?;

    let session = Session::new(crate::progress::Progress::HIDDEN);
    let mut generator = Generator::new(
        options.catalog.clone(),
        options.visitors,
        options.seed,
        session.sequence.clone(),
        &options.write_key,
        options.mode,
    );
    let requests: Vec<_> = (0..connections).map(|_| generator.next_request()).collect();
    let endpoint = &target.endpoint;
    let timeout = options.request_timeout;
    let opened: Vec<(Connection, bool)> = futures::stream::iter(requests)
        .map(|request| async move {
            // The generator above speaks Segment, whatever `options.protocol` says.
            let mut connection = Connection::open(endpoint, Protocol::Segment, timeout).await;
            let outcome = connection.send(&request, timeout).await;
            (connection, outcome.ok)
        })
        .buffer_unordered(OPEN_AT_ONCE)
        .collect()
        .await;
    tokio::time::sleep(settle).await;
    let rss_after_bytes = rss_bytes(pid).context("reading the target's VmRSS")?;
    let answered = opened.iter().filter(|(_, ok)| *ok).count();
    let still_open = opened.iter().filter(|(c, _)| c.is_open()).count();
    drop(opened);
    let grown = rss_after_bytes.saturating_sub(rss_before_bytes) as f64;
    Ok(IdleResult {
        target: spec.kind,
        requested: connections,
        answered,
        still_open,
        rss_before_bytes,
        rss_after_bytes,
        bytes_per_connection: if still_open > 0 { grown / still_open as f64 } else { 0.0 },
    })
}

/// The terminal line of one measurement.
pub fn describe(result: &IdleResult) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    format!(
        "{}: {} connections ({} answered 2xx, {} still open), RSS {:.1} MiB -> {:.1} MiB, {:.1} KiB per connection",
        result.target.as_str(),
        result.requested,
        result.answered,
        result.still_open,
        mib(result.rss_before_bytes),
        mib(result.rss_after_bytes),
        result.bytes_per_connection / 1024.0
    )
}
