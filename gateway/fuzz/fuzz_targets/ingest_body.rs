//! Fuzzes the whole ingest path (decompress, parse, validate, stamp) through the handler:
//! any input must end in a 2xx or a 4xx, never a panic or a 5xx.
#![no_main]


use bytes::Bytes;
use clickstream_gateway_fuzz::gateway;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 4] = ["/v1/batch", "/v1/track", "/v1/events", "/v1/p"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let (runtime, app) = gateway();
    let mut request = http::Request::post(PATHS[usize::from(selector) % PATHS.len()]).header("x-write-key", "k");
    if selector & 0x80 != 0 {
        request = request.header("content-encoding", "gzip");
    }
    let request = request.body(Full::new(Bytes::copy_from_slice(body))).expect("request");
    let response = runtime.block_on(app.handle(request, "127.0.0.1:9".parse().expect("addr")));
    let status = response.status();
    assert!(status.is_success() || status.is_client_error(), "status {status} for {data:?}");
});
