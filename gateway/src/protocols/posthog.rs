//! PostHog's capture API (`/e`, `/capture`, `/batch`, `/i/v0/e`, `/track`): the body in each
//! encoding posthog-js and the server SDKs send, unwrapped into PostHog events that
//! `posthog_map` turns into Segment ones.
//!
//! Encodings: plain JSON; gzip, flagged by `?compression=gzip-js` (posthog-js), `gzip`, or a
//! `Content-Encoding: gzip` header (the Python SDK; decoded before this); and a form body
//! `data=<base64 JSON>` (posthog-js over `sendBeacon`). posthog-js stopped sending lz64
//! (LZ-string) long ago; it is answered 415.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use super::{decode_base64, posthog_map, Canonical, Outcome};
use crate::error::{json_response, GatewayError};
use crate::sources::{basic_auth_user, header_write_key};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

pub(super) fn translate(parts: &Parts, body: Vec<u8>, limit: usize) -> Result<Canonical, GatewayError> {
    let query = Query::parse(parts.uri.query());
    let json = unwrap_body(&query, &parts.headers, body, limit)?;
    let value: Value = serde_json::from_slice(&json).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    let (events, envelope) = split(value)?;
    let write_key = envelope.key.clone().or_else(|| events.iter().find_map(event_key));
    let keyed_by_header = basic_auth_user(&parts.headers).is_some() || header_write_key(&parts.headers).is_some();
    if write_key.is_none() && !keyed_by_header {
        return Err(GatewayError::MissingPostHogKey);
    }
    let sent_at = envelope.sent_at.or(query.sent_at);
    let received_at = Utc::now();
    let events = events
        .into_iter()
        .enumerate()
        .map(|(index, event)| posthog_map::to_segment(index, event, sent_at, received_at))
        .collect();
    Ok(Canonical::from_events(events, write_key))
}

/// `{"status": 1}`, as PostHog answers, plus the rejected events when some were.
pub(super) fn respond(outcome: &Outcome) -> Response<Full<Bytes>> {
    let mut body = json!({"status": 1});
    if !outcome.rejected.is_empty() {
        crate::error::list_rejected(&mut body, &outcome.rejected);
    }
    let mut response = json_response(StatusCode::OK, &body);
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// What the query string says about the body.
#[derive(Debug, Default)]
struct Query {
    compression: Option<String>,
    /// `_`: the client's clock when it sent, in ms (posthog-js's default).
    sent_at: Option<DateTime<Utc>>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut parsed = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*name {
                "compression" => parsed.compression = Some(value.to_ascii_lowercase()),
                "_" => parsed.sent_at = value.parse().ok().and_then(DateTime::from_timestamp_millis),
                _ => {}
            }
        }
        parsed
    }
}

/// The JSON text inside whatever encoding the client chose.
fn unwrap_body(query: &Query, headers: &http::HeaderMap, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, GatewayError> {
    let body = match query.compression.as_deref() {
        Some("gzip-js" | "gzip") => gunzip(&body, limit)?,
        // posthog-js names base64 in the query and sends it as a form body, handled below.
        None | Some("" | "base64") if !body.starts_with(&GZIP_MAGIC) => body,
        None | Some("" | "base64") => gunzip(&body, limit)?,
        Some(other) => return Err(GatewayError::UnsupportedCompression(other.to_owned())),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !(content_type.starts_with("application/x-www-form-urlencoded") || body.starts_with(b"data=")) {
        return Ok(body);
    }
    let data = url::form_urlencoded::parse(&body).find(|(name, _)| name == "data").map(|(_, v)| v.into_owned());
    let data = data.ok_or_else(|| GatewayError::BadShape("form body has no `data` field".into()))?;
    let trimmed = data.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Ok(data.into_bytes());
    }
    decode_base64(&data).map_err(|e| GatewayError::BadShape(format!("form field `data` is not base64: {e}")))
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, GatewayError> {
    crate::body::decode(flate2::read::GzDecoder::new(body), "gzip", limit)
}

/// What the body says about all of its events.
#[derive(Debug, Default)]
struct BodyEnvelope {
    key: Option<String>,
    sent_at: Option<DateTime<Utc>>,
}

/// The events of a body: an array, `{"batch": [...]}` (the server SDKs), `{"data": ...}`
/// (older SDKs), or one event object.
fn split(value: Value) -> Result<(Vec<Value>, BodyEnvelope), GatewayError> {
    let mut map = match value {
        Value::Array(events) => return Ok((events, BodyEnvelope::default())),
        Value::Object(map) => map,
        other => {
            let got = posthog_map::type_name(&other);
            return Err(GatewayError::BadShape(format!(
                "PostHog body must be an event object, an array of events or {{\"batch\": [...]}}, got {got}"
            )));
        }
    };
    let envelope = BodyEnvelope { key: key_of(&map), sent_at: timestamp(map.get("sent_at")) };
    let events = match map.remove("batch").or_else(|| map.remove("data")) {
        Some(Value::Array(events)) => events,
        Some(Value::Object(event)) => vec![Value::Object(event)],
        Some(other) => {
            let got = posthog_map::type_name(&other);
            return Err(GatewayError::BadShape(format!("field `batch` must be an array of events, got {got}")));
        }
        None => vec![Value::Object(map)],
    };
    Ok((events, envelope))
}

fn key_of(map: &Map<String, Value>) -> Option<String> {
    ["api_key", "token"].iter().find_map(|name| map.get(*name)?.as_str().filter(|k| !k.is_empty()).map(str::to_owned))
}

/// An event's own key: its `api_key`, or the `token` posthog-js puts in its properties.
fn event_key(event: &Value) -> Option<String> {
    let map = event.as_object()?;
    key_of(map).or_else(|| key_of(map.get("properties")?.as_object()?))
}

pub(super) fn timestamp(value: Option<&Value>) -> Option<DateTime<Utc>> {
    clickstream_schema::parse_timestamp(value?.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn parts(uri: &str, content_type: &str) -> Parts {
        let request = http::Request::post(uri).header("content-type", content_type).body(()).expect("request");
        request.into_parts().0
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn batch_of(canonical: &Canonical) -> Value {
        let (body, _) = canonical.body.as_ref().expect("events");
        serde_json::from_slice(body).expect("json")
    }

    const EVENT: &str = r#"{"event":"clicked","distinct_id":"u1","properties":{"token":"phc_1","x":1}}"#;

    #[test]
    fn every_encoding_reads_the_same_events() {
        let base64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, EVENT);
        let form = format!("data={}", url::form_urlencoded::byte_serialize(base64.as_bytes()).collect::<String>());
        let cases = [
            (parts("/e/", "application/json"), EVENT.as_bytes().to_vec()),
            (parts("/e/?compression=gzip-js&_=1700000000000", "text/plain"), gzip(EVENT.as_bytes())),
            (parts("/e/?compression=base64", "application/x-www-form-urlencoded"), form.into_bytes()),
            (parts("/batch/", "application/json"), format!(r#"{{"api_key":"phc_1","batch":[{EVENT}]}}"#).into_bytes()),
        ];
        for (parts, body) in cases {
            let canonical = translate(&parts, body, 1 << 20).expect("translates");
            assert_eq!(canonical.write_key.as_deref(), Some("phc_1"), "{}", parts.uri);
            let batch = batch_of(&canonical);
            assert_eq!(batch["batch"][0]["event"], "clicked", "{}", parts.uri);
            assert_eq!(batch["batch"][0]["properties"]["x"], 1);
        }
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let error =
            |uri: &str, body: &[u8]| translate(&parts(uri, "text/plain"), body.to_vec(), 1 << 20).expect_err(uri);
        assert!(matches!(error("/e/", b"{nope"), GatewayError::InvalidJson(_)));
        assert!(matches!(error("/e/?compression=gzip-js", b"not gzip"), GatewayError::BadCompression { .. }));
        assert!(matches!(error("/e/?compression=lz64", b"x"), GatewayError::UnsupportedCompression(_)));
        assert!(matches!(error("/e/", b"data=%%%"), GatewayError::BadShape(_)));
        assert!(matches!(error("/e/", b"42"), GatewayError::BadShape(_)));
        assert!(matches!(error("/batch/", br#"{"batch":7}"#), GatewayError::BadShape(_)));
    }

    #[test]
    fn a_missing_key_is_named_in_posthogs_terms() {
        let keyless = br#"{"event":"clicked","distinct_id":"u1","properties":{"x":1}}"#.to_vec();
        let error = translate(&parts("/e/", "application/json"), keyless.clone(), 1 << 20).expect_err("no key");
        assert!(matches!(error, GatewayError::MissingPostHogKey));
        assert_eq!((error.status().as_u16(), error.kind()), (401, "missing_write_key"));
        let message = error.to_string();
        assert!(message.contains("`api_key`") && message.contains("`token`"), "{message}");
        let mut keyed = parts("/e/", "application/json");
        keyed.headers.insert("x-write-key", http::HeaderValue::from_static("phc_1"));
        assert!(translate(&keyed, keyless, 1 << 20).is_ok(), "a key in X-Write-Key serves too");
    }
}
