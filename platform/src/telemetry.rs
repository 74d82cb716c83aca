//! Tracing setup shared by every service: human-readable or JSON logs, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` filter.
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests, `dev` restarting) is harmless, so the error is ignored.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
