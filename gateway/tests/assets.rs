//! `GET /t.js` through the handler: the embedded tracker, its encodings, validators and caching.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use clickstream_gateway::sink::MemorySink;
use clickstream_gateway::{app, App, AppState, GatewayConfig};
use http::{header, Method, Request, Response};
use http_body_util::{BodyExt, Full};

const TRACKER: &[u8] = include_bytes!("../../js-tracker/dist/t.js");
const TRACKER_BR: &[u8] = include_bytes!("../../js-tracker/dist/t.js.br");

fn gateway() -> App {
    app(AppState::new(GatewayConfig::default(), Arc::new(MemorySink::default())).expect("valid routing"))
}

async fn get(app: &App, headers: &[(header::HeaderName, &str)]) -> (Response<()>, Bytes) {
    let mut request = Request::builder().method(Method::GET).uri("/t.js");
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response =
        app.handle(request.body(Full::new(Bytes::new())).expect("request"), "127.0.0.1:9".parse().expect("addr")).await;
    let (parts, body) = response.into_parts();
    (Response::from_parts(parts, ()), body.collect().await.expect("body").to_bytes())
}

fn header(response: &Response<()>, name: header::HeaderName) -> &str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn every_encoding_serves_the_committed_build() {
    let app = gateway();
    let (plain, body) = get(&app, &[]).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(body, TRACKER, "identity is dist/t.js byte for byte");
    assert_eq!(header(&plain, header::CONTENT_TYPE), "text/javascript; charset=utf-8");
    assert_eq!(header(&plain, header::CONTENT_ENCODING), "");

    let (gzip, body) = get(&app, &[(header::ACCEPT_ENCODING, "gzip, deflate")]).await;
    assert_eq!(header(&gzip, header::CONTENT_ENCODING), "gzip");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut unzipped).expect("valid gzip");
    assert_eq!(unzipped, TRACKER, "the gzip variant holds the same script");
    assert!(body.len() <= 2048, "t.js is {} bytes gzipped, over the 2 KB budget", body.len());

    let (brotli, body) = get(&app, &[(header::ACCEPT_ENCODING, "gzip, deflate, br, zstd")]).await;
    assert_eq!(header(&brotli, header::CONTENT_ENCODING), "br");
    assert_eq!(body, TRACKER_BR);
    assert!(body.len() < TRACKER.len());

    let etags = [&plain, &gzip, &brotli].map(|r| header(r, header::ETAG).to_owned());
    assert!(etags.iter().all(|tag| tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18), "{etags:?}");
    assert!(
        etags[0] != etags[1] && etags[1] != etags[2] && etags[0] != etags[2],
        "one strong ETag per encoding: {etags:?}"
    );
    for response in [&plain, &gzip, &brotli] {
        assert_eq!(header(response, header::VARY), "Accept-Encoding");
        assert_eq!(header(response, header::CACHE_CONTROL), "public, max-age=3600, stale-while-revalidate=86400");
        assert_eq!(header(response, header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    }
}

#[tokio::test]
async fn a_current_cached_copy_gets_304_and_a_stale_one_the_script() {
    let app = gateway();
    let (first, _) = get(&app, &[(header::ACCEPT_ENCODING, "br")]).await;
    let etag = header(&first, header::ETAG).to_owned();

    let (revalidated, body) = get(&app, &[(header::ACCEPT_ENCODING, "br"), (header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(revalidated.status(), 304);
    assert!(body.is_empty());
    assert_eq!(header(&revalidated, header::ETAG), etag);
    assert_eq!(header(&revalidated, header::CACHE_CONTROL), "public, max-age=3600, stale-while-revalidate=86400");

    let (stale, body) =
        get(&app, &[(header::ACCEPT_ENCODING, "br"), (header::IF_NONE_MATCH, "\"0000000000000000\"")]).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(body, TRACKER_BR);

    let (other_encoding, _) = get(&app, &[(header::ACCEPT_ENCODING, "gzip"), (header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(other_encoding.status(), 200, "the brotli ETag does not validate the gzip copy");
}

#[tokio::test]
async fn only_get_and_head_reach_the_script() {
    let app = gateway();
    let request =
        |method| Request::builder().method(method).uri("/t.js").body(Full::new(Bytes::new())).expect("request");
    let head = app.handle(request(Method::HEAD), "127.0.0.1:9".parse().expect("addr")).await;
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("text/javascript; charset=utf-8")
    );
    let post = app.handle(request(Method::POST), "127.0.0.1:9".parse().expect("addr")).await;
    assert_eq!(post.status(), 405);
}
