//! CORS: preflight answers and the headers every browser-visible response carries.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Headers analytics.js and our tracker send cross-origin. Without `Authorization` and
/// `X-Retry-Count` every analytics.js event is blocked by its preflight.
/// `SP-Anonymous` is what Snowplow's browser tracker sends under server-side anonymisation.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Content-Encoding, X-Retry-Count, X-Write-Key, SP-Anonymous";

/// 204 for `OPTIONS`. The write key is not known at preflight, so any origin may ask; the
/// origin is enforced on the request itself.
pub fn preflight(max_age_secs: u32) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, max_age_secs.into());
    response
}

/// Lets the calling page read the response, errors included, so a browser client can tell a
/// 4xx (drop) from a 503 (retry after `Retry-After`). `credentialed` answers requests sent
/// with cookies (Snowplow's browser tracker sends `credentials: include`), which browsers
/// accept only with the origin named, never `*`, and `Allow-Credentials: true`.
pub fn decorate(response: &mut Response<Full<Bytes>>, origin: Option<HeaderValue>, credentialed: bool) {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin else { return };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Retry-After"));
    if credentialed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}
