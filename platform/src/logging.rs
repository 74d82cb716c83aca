//! Logging shared by every service: human-readable or JSON log lines (filtered by `RUST_LOG`), and a throttle for repeated error lines.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber that writes log lines. `RUST_LOG` overrides the default `info` filter.
/// pg_walstream (`clickstream cdc`) logs each status update to PostgreSQL at info: every second.
pub fn init_logging(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,pg_walstream=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    // A second init (tests, `dev` restarting) is harmless, so the error is ignored.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Lets one log line through per interval, so an outage logs its cause without flooding.
#[derive(Debug, Default)]
pub struct LogThrottle {
    last_second: std::sync::atomic::AtomicU64,
}

impl LogThrottle {
    pub const fn new() -> Self {
        Self { last_second: std::sync::atomic::AtomicU64::new(0) }
    }

    /// True at most once per wall-clock second.
    pub fn allow(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.last_second.swap(now, std::sync::atomic::Ordering::Relaxed) != now
    }
}
