//! Fuzzes Segment's pixel through the handler: whatever `GET /v1/pixel/{type}` carries, raw in
//! the query string or base64-encoded in `data` (the fuzzer's bytes encoded here, so the JSON
//! inside is explored too), the answer is the 200 GIF, never a panic, an error or a broken image.
#![no_main]


use base64::Engine as _;
use clickstream_gateway_fuzz::gateway;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 6] = ["track", "page", "identify", "group", "alias", "screen"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let (runtime, app) = gateway();
    let kind = TYPES[usize::from(selector) % TYPES.len()];
    let query = if selector & 0x80 == 0 {
        let alphabet = if selector & 0x40 == 0 {
            base64::engine::general_purpose::STANDARD
        } else {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
        };
        let data: String = url::form_urlencoded::byte_serialize(alphabet.encode(input).as_bytes()).collect();
        format!("data={data}")
    } else {
        // The bytes as a query string, escaped only where a URI could not hold them.
        let query: String = url::form_urlencoded::byte_serialize(input).collect();
        query.replace("%3D", "=").replace("%26", "&")
    };
    let request = http::Request::get(format!("/v1/pixel/{kind}?{query}")).body(Full::default()).expect("request");
    let response = runtime.block_on(app.handle(request, "127.0.0.1:9".parse().expect("addr")));
    let status = response.status();
    assert_eq!(status, 200, "status {status} for /v1/pixel/{kind}?{query}");
    assert_eq!(response.headers()["content-type"], "image/gif", "for /v1/pixel/{kind}?{query}");
});
