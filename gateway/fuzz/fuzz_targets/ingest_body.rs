//! Fuzzes the whole ingest path (decompress, parse, validate, stamp) through the handler:
//! any input must end in a 2xx or a 4xx, never a panic or a 5xx.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::sink::NullSink;
use clickstream_gateway::{app, App, AppState, GatewayConfig};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 4] = ["/v1/batch", "/v1/track", "/v1/events", "/v1/p"];

fn fixture() -> &'static (tokio::runtime::Runtime, App) {
    static FIXTURE: OnceLock<(tokio::runtime::Runtime, App)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut config = GatewayConfig::default();
        config.sources.push(SourceConfig { name: "fuzz".into(), write_key: "k".into(), allowed_origins: vec!["*".into()] });
        config.dedup.enabled = false;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        (runtime, app(AppState::new(config, Arc::new(NullSink)).expect("valid routing")))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let (runtime, app) = fixture();
    let mut request = http::Request::post(PATHS[usize::from(selector) % PATHS.len()]).header("x-write-key", "k");
    if selector & 0x80 != 0 {
        request = request.header("content-encoding", "gzip");
    }
    let request = request.body(Full::new(Bytes::copy_from_slice(body))).expect("request");
    let response = runtime.block_on(app.handle(request, "127.0.0.1:9".parse().expect("addr")));
    let status = response.status();
    assert!(status.is_success() || status.is_client_error(), "status {status} for {data:?}");
});
