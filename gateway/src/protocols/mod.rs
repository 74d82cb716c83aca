//! Protocol adapters: each tracker family's wire format turned into canonical, Segment-shaped
//! events, so auth, limits, dedup, edge fields, routing and the sink stay one shared pipeline.
//!
//! Every adapter answers the same question through [`Adapter::translate`]: given the request,
//! which Segment body holds its events, and which of its events could not be translated at all?
//! Segment's own body is passed through untouched (the zero-copy splice reads the client's
//! bytes); the others build `serde_json` values and write a `{"batch": [...]}` body, which then
//! takes exactly the Segment path.

mod pixel;
mod posthog;
mod posthog_config;
mod posthog_map;
mod segment;
mod snowplow;
mod snowplow_map;

use bytes::Bytes;
use clickstream_schema::EventType;
use http::request::Parts;
use http::Response;
use http_body_util::Full;
use serde_json::Value;

use crate::config::GatewayConfig;
use crate::endpoints::IngestKind;
use crate::error::{GatewayError, RejectedItem};
use crate::metrics::Metrics;

pub use posthog_config::PostHogConfigRoute;
pub use snowplow::{SnowplowRoute, SNOWPLOW_POST_PATH};

/// The wire protocol an event arrived in: the value of each record's `protocol` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Segment's HTTP tracking API (also what RudderStack, Jitsu and our own t.js send).
    Segment,
    /// Segment's pixel API: one event, base64 JSON in a GET query.
    Pixel,
    /// PostHog's capture API.
    PostHog,
    /// Snowplow's tracker protocol.
    Snowplow,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Self::Segment, Self::Pixel, Self::PostHog, Self::Snowplow];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Segment => "segment",
            Self::Pixel => "pixel",
            Self::PostHog => "posthog",
            Self::Snowplow => "snowplow",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// An ingest endpoint: which adapter reads its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Segment(IngestKind),
    /// `GET /v1/pixel/{type}`.
    Pixel(EventType),
    /// `POST /e`, `/capture`, `/batch`, `/i/v0/e`, `/track`.
    PostHog,
    /// `POST /com.snowplowanalytics.snowplow/tp2` and `GET /i`.
    Snowplow(SnowplowRoute),
}

/// What an adapter made of a request: a Segment body for the shared pipeline, and the events it
/// could not translate.
#[derive(Debug, Default)]
pub(crate) struct Canonical {
    /// The Segment body and how to read it; `None` when nothing in the request translated.
    pub body: Option<(Vec<u8>, IngestKind)>,
    /// A write key the adapter found outside the Segment body (PostHog's `api_key`, or a
    /// pixel's key recovered from JSON that does not parse).
    pub write_key: Option<String>,
    /// The source named by the protocol's own configuration (a Snowplow app id mapped in
    /// `snowplow.app_sources`), used when no write key was sent.
    pub source_name: Option<String>,
    /// A cookie the answer sets (Snowplow's network user id).
    pub set_cookie: Option<http::HeaderValue>,
    /// Events that never became canonical, with their position in the request and what was
    /// received (for the dead-letter topic).
    pub rejected: Vec<(RejectedItem, Value)>,
    /// The request position of each event in `body`, when some positions were rejected here;
    /// `None` means the body's events are the request's, in order.
    pub positions: Option<Vec<usize>>,
}

impl Canonical {
    /// Canonical events (or per-event failures) in request order, written as one Segment batch.
    pub fn from_events(events: Vec<Result<Value, (RejectedItem, Value)>>, write_key: Option<String>) -> Self {
        let mut canonical = Self { write_key, ..Self::default() };
        let mut positions = Vec::with_capacity(events.len());
        let mut batch = Vec::with_capacity(events.len());
        for (index, event) in events.into_iter().enumerate() {
            match event {
                Ok(event) => {
                    positions.push(index);
                    batch.push(event);
                }
                Err(rejected) => canonical.rejected.push(rejected),
            }
        }
        if !batch.is_empty() {
            let body = serde_json::json!({ "batch": batch });
            canonical.body = Some((body.to_string().into_bytes(), IngestKind::Batch));
        }
        if !canonical.rejected.is_empty() {
            canonical.positions = Some(positions);
        }
        canonical
    }
}

/// Base64 as clients really send it: padded or not, standard or URL-safe alphabet, and with
/// the `+` that an unescaped query string or form body turned into a space.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    let text = text.trim().replace(' ', "+");
    STANDARD.decode(&text).or_else(|_| URL_SAFE.decode(&text))
}

/// A rejection made by an adapter, before any event existed.
pub(crate) fn rejected(index: usize, kind: &'static str, reason: String, payload: Value) -> (RejectedItem, Value) {
    (RejectedItem { index, kind, reason }, payload)
}

/// What the shared pipeline reports back to the adapter for its answer.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub rejected: Vec<RejectedItem>,
    /// Passed on from [`Canonical::set_cookie`].
    pub set_cookie: Option<http::HeaderValue>,
}

impl Adapter {
    pub fn protocol(self) -> Protocol {
        match self {
            Self::Segment(_) => Protocol::Segment,
            Self::Pixel(_) => Protocol::Pixel,
            Self::PostHog => Protocol::PostHog,
            Self::Snowplow(_) => Protocol::Snowplow,
        }
    }

    /// Endpoint template for metrics and logs.
    pub fn template(self) -> &'static str {
        match self {
            Self::Segment(IngestKind::Batch) => "/v1/batch",
            Self::Segment(IngestKind::Events) => "/v1/events",
            Self::Segment(IngestKind::Single(_)) => "/v1/{type}",
            Self::Pixel(_) => "/v1/pixel/{type}",
            Self::PostHog => "posthog:/{e,capture,batch,i/v0/e,track}",
            Self::Snowplow(route) => route.template(),
        }
    }

    /// Whether rejected events of a request with no accepted event still go to the
    /// dead-letter topic. Only where the client cannot be told (the pixel always answers a
    /// GIF); others get a 400 naming the problem and can fix their request.
    pub fn dead_letters_when_nothing_accepted(self) -> bool {
        matches!(self, Self::Pixel(_) | Self::Snowplow(SnowplowRoute::Pixel))
    }

    /// Whether dead letters record each event's position in its request.
    pub fn indexed(self) -> bool {
        !matches!(self, Self::Segment(IngestKind::Single(_)) | Self::Pixel(_) | Self::Snowplow(SnowplowRoute::Pixel))
    }

    /// Whether browsers may send with credentials (cookies), as Snowplow's browser tracker
    /// does: its answers then name the origin and allow credentials.
    pub fn credentialed(self) -> bool {
        matches!(self, Self::Snowplow(_))
    }

    /// Turns the request into canonical events.
    pub(crate) fn translate(
        self,
        parts: &Parts,
        body: Vec<u8>,
        config: &GatewayConfig,
    ) -> Result<Canonical, GatewayError> {
        match self {
            Self::Segment(kind) => Ok(segment::translate(kind, body)),
            Self::Pixel(kind) => Ok(pixel::translate(kind, parts.uri.query())),
            Self::PostHog => posthog::translate(parts, body, config.limits.max_batch_bytes),
            Self::Snowplow(route) => snowplow::translate(route, parts, &body, config),
        }
    }

    /// The answer the protocol's clients expect, for the pipeline's outcome.
    pub(crate) fn respond(
        self,
        result: Result<Outcome, GatewayError>,
        metrics: &Metrics,
    ) -> Result<Response<Full<Bytes>>, GatewayError> {
        match self {
            Self::Segment(_) => result.map(|outcome| segment::respond(&outcome)),
            Self::Pixel(_) => Ok(pixel::respond(&result, metrics)),
            Self::PostHog => result.map(|outcome| posthog::respond(&outcome)),
            Self::Snowplow(route) => snowplow::respond(route, result, metrics),
        }
    }
}
