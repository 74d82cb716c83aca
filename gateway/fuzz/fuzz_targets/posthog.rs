//! Fuzzes the PostHog capture adapter through the handler: a body to any of PostHog's capture
//! paths, plain, gzip-compressed or as a base64 form (the fuzzer's bytes compressed or encoded
//! here, so the JSON inside is explored too), must end in a 2xx or a 4xx, never a panic or a 5xx.
#![no_main]

use std::io::Write as _;

use base64::Engine as _;
use bytes::Bytes;
use clickstream_gateway_fuzz::gateway;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 5] = ["/e/", "/batch/", "/capture/", "/i/v0/e/", "/track/"];

fn gzip(input: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(input).expect("gzip to memory");
    encoder.finish().expect("gzip to memory")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let (runtime, app) = gateway();
    let path = PATHS[usize::from(selector) % PATHS.len()];
    // The high bits pick the encoding; the raw cases feed the decoders the fuzzer's own bytes.
    let (query, content_type, body) = match selector >> 5 {
        0 => ("", "application/json", input.to_vec()),
        1 => ("?compression=gzip-js&ver=1.200.0", "text/plain", gzip(input)),
        2 => ("?compression=gzip-js", "text/plain", input.to_vec()),
        3 => ("", "application/x-www-form-urlencoded", {
            let data = base64::engine::general_purpose::STANDARD.encode(input);
            format!("data={}", url::form_urlencoded::byte_serialize(data.as_bytes()).collect::<String>()).into_bytes()
        }),
        4 => ("", "application/x-www-form-urlencoded", input.to_vec()),
        5 => ("?compression=base64", "text/plain", base64::engine::general_purpose::STANDARD.encode(input).into_bytes()),
        6 => ("?compression=lz64", "text/plain", input.to_vec()),
        _ => ("", "text/plain", input.to_vec()),
    };
    let request = http::Request::post(format!("{path}{query}"))
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let response = runtime.block_on(app.handle(request, "127.0.0.1:9".parse().expect("addr")));
    let status = response.status();
    assert!(status.is_success() || status.is_client_error(), "status {status} for {path}{query} with {data:?}");
});
