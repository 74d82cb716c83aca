//! What every fuzz target shares: the gateway's handler over a null sink, built once per
//! process, with one source (`fuzz`, write key `k`, any origin) that Snowplow's app id `app`
//! also maps to.

use std::sync::{Arc, OnceLock};

use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::sink::NullSink;
use clickstream_gateway::{app, App, AppState, GatewayConfig};

/// The runtime that drives the handler, and the handler. Dedup is off, so the same input
/// always takes the same path.
pub fn gateway() -> &'static (tokio::runtime::Runtime, App) {
    static GATEWAY: OnceLock<(tokio::runtime::Runtime, App)> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let mut config = GatewayConfig::default();
        config.sources.push(SourceConfig { name: "fuzz".into(), write_key: "k".into(), allowed_origins: vec!["*".into()] });
        config.snowplow.app_sources.insert("app".into(), "fuzz".into());
        config.dedup.enabled = false;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        (runtime, app(AppState::new(config, Arc::new(NullSink)).expect("valid routing")))
    })
}
