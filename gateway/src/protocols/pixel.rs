//! Segment's pixel API: `GET /v1/pixel/{type}?data=<base64 JSON>`, for e-mail opens and pages
//! without JavaScript. Every request is answered with the same transparent GIF, so no mail
//! client shows a broken image; what went wrong is told to the dead-letter topic (when the
//! write key is known) or to a metric (when it is not).

use bytes::Bytes;
use clickstream_schema::EventType;
use http::{header, HeaderValue, Response};
use http_body_util::Full;
use serde_json::Value;

use super::{decode_base64, rejected, Canonical, Outcome};
use crate::endpoints::IngestKind;
use crate::error::GatewayError;
use crate::metrics::Metrics;

/// A 1×1 transparent GIF89a.
pub const TRANSPARENT_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub(super) fn translate(kind: EventType, query: Option<&str>) -> Canonical {
    let data = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "data")
        .map(|(_, value)| value.into_owned());
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        let reason = "query parameter `data` is missing: send the event as base64-encoded JSON in `?data=`";
        return Canonical {
            rejected: vec![rejected(0, "missing_data", reason.into(), Value::Null)],
            ..Default::default()
        };
    };
    let data = data.trim().to_owned();
    let json = match decode_base64(&data) {
        Ok(json) => json,
        Err(error) => {
            let reason = format!("query parameter `data` is not base64: {error}");
            let payload = Value::String(data);
            return Canonical { rejected: vec![rejected(0, "invalid_base64", reason, payload)], ..Default::default() };
        }
    };
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&json) {
        let text = String::from_utf8_lossy(&json).into_owned();
        let write_key = recover_write_key(&text);
        let reason = format!("query parameter `data` decodes to invalid JSON: {error}");
        let rejected = vec![rejected(0, "invalid_json", reason, Value::String(text))];
        return Canonical { write_key, rejected, ..Default::default() };
    }
    Canonical { body: Some((json, IngestKind::Single(kind))), ..Default::default() }
}

/// The `writeKey` of JSON that does not parse as a whole, when its `"writeKey": "..."` pair is
/// intact: enough to send the broken event to its source's dead-letter topic.
fn recover_write_key(text: &str) -> Option<String> {
    let after = &text[text.find("\"writeKey\"")? + "\"writeKey\"".len()..];
    let value = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let key = &value[..value.find('"')?];
    (!key.is_empty() && !key.contains('\\')).then(|| key.to_owned())
}

/// The GIF, whatever happened: a broken image helps no one who reads a mail.
pub(super) fn respond(result: &Result<Outcome, GatewayError>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if let Err(error) = result {
        metrics.pixel_dropped(error.kind());
        tracing::debug!(kind = error.kind(), %error, "pixel event not delivered");
    }
    let mut response = Response::new(Full::new(Bytes::from_static(TRANSPARENT_GIF)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    // Each open must reach us: a cached pixel counts nothing.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate, max-age=0"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine as _;

    fn encoded(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    #[test]
    fn data_decodes_with_or_without_padding_and_escaping() {
        let json = r#"{"writeKey":"k","userId":"u??>","event":"Opened"}"#;
        let padded = encoded(json);
        assert!(padded.contains('+') && padded.ends_with('='), "exercises both: {padded}");
        for data in [padded.clone(), padded.trim_end_matches('=').to_owned(), padded.replace('+', "%2B")] {
            let canonical = translate(EventType::Track, Some(&format!("data={data}")));
            assert_eq!(canonical.body.map(|(body, _)| body), Some(json.as_bytes().to_vec()), "{data}");
        }
    }

    #[test]
    fn bad_data_is_rejected_with_its_reason_and_any_key_that_survives() {
        let none = translate(EventType::Track, None);
        assert_eq!(none.rejected[0].0.kind, "missing_data");
        let garbage = translate(EventType::Track, Some("data=%%%not-base64%%%"));
        assert_eq!(garbage.rejected[0].0.kind, "invalid_base64");
        assert_eq!(garbage.write_key, None);
        let broken =
            translate(EventType::Track, Some(&format!("data={}", encoded(r#"{"writeKey": "wk_1", "event":"#))));
        assert_eq!(broken.rejected[0].0.kind, "invalid_json");
        assert_eq!(broken.write_key.as_deref(), Some("wk_1"));
        assert!(broken.body.is_none());
    }

    #[test]
    fn the_gif_is_a_gif() {
        assert!(TRANSPARENT_GIF.starts_with(b"GIF89a") && TRANSPARENT_GIF.ends_with(b";"));
        assert_eq!(TRANSPARENT_GIF.len(), 43);
    }
}
