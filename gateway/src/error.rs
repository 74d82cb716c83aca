//! Every way a gateway request can fail, each mapped to a deliberate status: 4xx tells the
//! client to fix its request, 503 tells it to retry.

use bytes::Bytes;
use clickstream_schema::PayloadError;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;

/// One event of a request that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedItem {
    /// Position of the event in the request.
    pub index: usize,
    /// Stable code, such as `missing_identity`.
    pub kind: &'static str,
    /// What is wrong, naming the field.
    pub reason: String,
}

/// At most this many rejected events are described in a response. A 500 KB body of `{}`
/// items described all 160,000 in a 12.8 MB answer.
pub const REJECTED_LISTED_MAX: usize = 100;

/// Sets `rejected` in `body` to the first [`REJECTED_LISTED_MAX`] of `items`, and, when some
/// were left out, `rejectedCount` to how many there were.
pub fn list_rejected(body: &mut serde_json::Value, items: &[RejectedItem]) {
    body["rejected"] = json!(&items[..items.len().min(REJECTED_LISTED_MAX)]);
    if items.len() > REJECTED_LISTED_MAX {
        body["rejectedCount"] = json!(items.len());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("missing write key: send it as the Basic auth user, the body's `writeKey`, or the `X-Write-Key` header")]
    MissingWriteKey,
    #[error("unknown write key")]
    UnknownWriteKey,
    #[error("no source is named {0:?}: `snowplow.app_sources` maps an app id to a source that is not configured")]
    UnknownSource(String),
    #[error("no source for these Snowplow events: set the tracker's appId (`aid`) to a write key, map it to a source in `snowplow.app_sources`, or send the key in the `X-Write-Key` header")]
    MissingSnowplowKey,
    #[error("API key not provided: send your project API key, a clickstream write key, as `api_key` in the body or as `token` in each event's properties (posthog-js's `token`)")]
    MissingPostHogKey,
    #[error("origin {0} is not allowed for this source")]
    OriginNotAllowed(String),
    #[error("request body is over the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    #[error("the request's events, as written to Kafka (with the batch's `context` and `integrations` and the User-Agent copied into each, and a dead letter for each rejected one), come to more than {limit} bytes; send fewer events per request, or a smaller batch-level `context`")]
    WrittenTooLarge { limit: usize },
    /// The schema's own message, which the splice's count also gives.
    #[error("{}", PayloadError::TooManyEvents { limit: *limit })]
    TooManyEvents { limit: usize },
    #[error("unsupported Content-Encoding {0:?}; use gzip, deflate or none")]
    UnsupportedEncoding(String),
    #[error("unsupported compression {0:?}: send plain JSON, gzip (`compression=gzip-js` or `gzip`), or a base64 form body (`data=`)")]
    UnsupportedCompression(String),
    #[error("body is not valid {encoding}: {reason}")]
    BadCompression { encoding: &'static str, reason: String },
    #[error("could not read request body: {0}")]
    BodyRead(String),
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    BadShape(String),
    #[error("no valid events in request: {}", .0.first().map_or("empty", |r| r.reason.as_str()))]
    NoValidEvents(Vec<RejectedItem>),
    #[error("Kafka cannot take events right now: {0}")]
    Unavailable(String),
    #[error("{0}; the other events were accepted. Send smaller events: retrying these cannot succeed")]
    RejectedByKafka(String),
    #[error("too many requests for this {scope}; retry after {retry_after_secs} s")]
    RateLimited { scope: &'static str, retry_after_secs: u64 },
    #[error("the gateway is at its in-flight request limit; retry shortly")]
    Overloaded,
    #[error("the gateway's CPU is saturated: requests wait about {lag_ms} ms before they are handled; retry shortly")]
    CpuOverloaded { lag_ms: u64 },
    #[error("Kafka is behind: about {wait_ms} ms of events are waiting to be delivered; retry shortly")]
    KafkaBehind { wait_ms: u64 },
    #[error("request body not received within {0} ms")]
    BodyTimeout(u64),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingWriteKey
            | Self::MissingSnowplowKey
            | Self::MissingPostHogKey
            | Self::UnknownWriteKey
            | Self::UnknownSource(_) => StatusCode::UNAUTHORIZED,
            Self::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::BodyTooLarge { .. }
            | Self::WrittenTooLarge { .. }
            | Self::TooManyEvents { .. }
            | Self::RejectedByKafka(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding(_) | Self::UnsupportedCompression(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NoValidEvents(items) if !items.is_empty() && items.iter().all(|i| i.kind == "event_too_large") => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::BadCompression { .. }
            | Self::BodyRead(_)
            | Self::InvalidJson(_)
            | Self::BadShape(_)
            | Self::NoValidEvents(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) | Self::Overloaded | Self::CpuOverloaded { .. } | Self::KafkaBehind { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// Stable code for the JSON body and for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MissingWriteKey | Self::MissingSnowplowKey | Self::MissingPostHogKey => "missing_write_key",
            Self::UnknownWriteKey | Self::UnknownSource(_) => "unknown_write_key",
            Self::OriginNotAllowed(_) => "origin_not_allowed",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::WrittenTooLarge { .. } => "written_too_large",
            Self::TooManyEvents { .. } => "too_many_events",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::UnsupportedCompression(_) => "unsupported_compression",
            Self::BadCompression { .. } => "bad_compression",
            Self::BodyRead(_) => "body_read",
            Self::InvalidJson(_) => "invalid_json",
            Self::BadShape(_) => "bad_shape",
            Self::NoValidEvents(_) => "no_valid_events",
            Self::Unavailable(_) => "kafka_unavailable",
            Self::RejectedByKafka(_) => "rejected_by_kafka",
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::CpuOverloaded { .. } => "cpu_overloaded",
            Self::KafkaBehind { .. } => "kafka_behind",
            Self::BodyTimeout(_) => "body_timeout",
        }
    }

    /// `{"success":false,"error":kind,"message":...}`, plus `rejected` when events were judged,
    /// and `Retry-After` on 503.
    pub fn into_response(self, retry_after_secs: u32) -> Response<Full<Bytes>> {
        let mut body = json!({"success": false, "error": self.kind(), "message": self.to_string()});
        if let Self::NoValidEvents(items) = &self {
            list_rejected(&mut body, items);
        }
        let mut response = json_response(self.status(), &body);
        let retry_after = match &self {
            Self::RateLimited { retry_after_secs, .. } => Some((*retry_after_secs).max(1)),
            Self::Overloaded | Self::CpuOverloaded { .. } | Self::KafkaBehind { .. } => Some(1),
            Self::Unavailable(_) => Some(u64::from(retry_after_secs)),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}
