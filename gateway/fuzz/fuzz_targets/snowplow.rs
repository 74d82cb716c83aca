//! Fuzzes the Snowplow adapter through the handler: a POST body to `/com.snowplowanalytics.snowplow/tp2`
//! must end in a 2xx or a 4xx, and a `GET /i` query in the GIF, never a panic or a 5xx.
#![no_main]


use bytes::Bytes;
use clickstream_gateway_fuzz::gateway;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let (runtime, app) = gateway();
    let pixel = selector & 1 == 1;
    let request = if pixel {
        // The bytes as a query string, escaped only where a URI could not hold them.
        let query: String = url::form_urlencoded::byte_serialize(input).collect();
        let query = query.replace("%3D", "=").replace("%26", "&");
        http::Request::get(format!("/i?{query}")).body(Full::default())
    } else {
        http::Request::post("/com.snowplowanalytics.snowplow/tp2")
            .header("content-type", "application/json; charset=UTF-8")
            .header("cookie", "sp=fuzz-network-id")
            .body(Full::new(Bytes::copy_from_slice(input)))
    };
    let response = runtime.block_on(app.handle(request.expect("request"), "127.0.0.1:9".parse().expect("addr")));
    let status = response.status();
    if pixel {
        assert!(status.is_success(), "status {status} for /i with {data:?}");
    } else {
        assert!(status.is_success() || status.is_client_error(), "status {status} for {data:?}");
    }
});
