//! The ingest pipeline: body → events → validation → edge fields → Kafka records, answered
//! only after the sink reports every record safe.

use std::net::SocketAddr;

use bytes::Bytes;
use chrono::Utc;
use clickstream_schema::{
    format_timestamp, parse_json, parse_ndjson, DeadLetter, Envelope, HEADER_EVENT_TYPE, HEADER_SOURCE,
};
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;
use serde_json::json;

use crate::app::App;
use crate::body::read_decoded;
use crate::edge::EdgeContext;
use crate::error::{json_response, GatewayError, RejectedItem};
use crate::routes::IngestKind;
use crate::sink::{Record, SinkError};
use crate::sources::{basic_auth_user, header_write_key, Source};

impl App {
    pub(crate) async fn ingest<B>(
        &self,
        kind: IngestKind,
        request: Request<B>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, GatewayError>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let state = &self.state;
        let (parts, body) = request.into_parts();
        // A key in the Authorization header is checked before the body is even read.
        let header_source = basic_auth_user(&parts.headers).map(|key| state.sources.lookup(&key)).transpose()?;
        let mut bytes = read_decoded(body, &parts.headers, state.config.limits.max_batch_bytes).await?;
        let envelope = parse_envelope(kind, &parts.headers, &mut bytes)?;
        let source = match header_source {
            Some(source) => source,
            None => self.body_or_header_source(&envelope, &parts.headers)?,
        };
        source.check_origin(parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()))?;

        let received_at = Utc::now();
        let edge = EdgeContext::from_request(&parts.headers, peer, &state.config);
        let batch_sent_at = envelope.sent_at;
        let (topics, limits) = (&state.config.topics, &state.config.limits);
        let mut records = Vec::new();
        let mut rejected = Vec::new();
        for (index, outcome) in envelope.into_events(kind.endpoint_type()).into_iter().enumerate() {
            let mut event = match outcome {
                Ok(event) => event,
                Err(rejection) => {
                    rejected.push((
                        RejectedItem { index, kind: rejection.error.kind(), reason: rejection.error.to_string() },
                        rejection.payload,
                    ));
                    continue;
                }
            };
            event.stamp(received_at, batch_sent_at);
            edge.apply(&mut event);
            let payload = event.to_json();
            if payload.len() > limits.max_event_bytes {
                let error =
                    clickstream_schema::EventError::TooLarge { size: payload.len(), limit: limits.max_event_bytes };
                rejected.push((
                    RejectedItem { index, kind: error.kind(), reason: error.to_string() },
                    serde_json::to_value(&event).unwrap_or_default(),
                ));
                continue;
            }
            records.push(Record {
                topic: topics.raw.clone(),
                key: event.visitor_key().map(str::to_owned),
                payload,
                headers: vec![
                    (HEADER_SOURCE.into(), source.name.to_string()),
                    (HEADER_EVENT_TYPE.into(), event.kind.as_str().to_owned()),
                ],
            });
        }
        if records.is_empty() {
            if rejected.is_empty() {
                return Err(GatewayError::BadShape("request holds no events".into()));
            }
            return Err(GatewayError::NoValidEvents(rejected.into_iter().map(|(item, _)| item).collect()));
        }
        let received = format_timestamp(received_at);
        let multiple = !matches!(kind, IngestKind::Single(_));
        for (item, payload) in &rejected {
            let letter = DeadLetter {
                reason_kind: item.kind.to_owned(),
                reason: item.reason.clone(),
                source: source.name.to_string(),
                index: multiple.then_some(item.index),
                received_at: received.clone(),
                payload: payload.clone(),
            };
            records.push(Record {
                topic: topics.dlq.clone(),
                key: None,
                payload: letter.to_json(),
                headers: vec![(HEADER_SOURCE.into(), source.name.to_string())],
            });
        }
        state
            .sink
            .deliver(records)
            .await
            .map_err(|SinkError::Unavailable(reason)| GatewayError::Unavailable(reason))?;
        if rejected.is_empty() {
            return Ok(crate::app::success());
        }
        let items: Vec<RejectedItem> = rejected.into_iter().map(|(item, _)| item).collect();
        Ok(json_response(StatusCode::OK, &json!({"success": true, "rejected": items})))
    }

    fn body_or_header_source(&self, envelope: &Envelope, headers: &http::HeaderMap) -> Result<&Source, GatewayError> {
        let key =
            envelope.write_key.clone().or_else(|| header_write_key(headers)).ok_or(GatewayError::MissingWriteKey)?;
        self.state.sources.lookup(&key)
    }
}

impl IngestKind {
    fn endpoint_type(self) -> Option<clickstream_schema::EventType> {
        match self {
            Self::Single(kind) => Some(kind),
            Self::Batch | Self::Events => None,
        }
    }
}

fn parse_envelope(kind: IngestKind, headers: &http::HeaderMap, bytes: &mut [u8]) -> Result<Envelope, GatewayError> {
    let json = |bytes: &mut [u8]| parse_json(bytes).map_err(|e| GatewayError::InvalidJson(e.to_string()));
    match kind {
        IngestKind::Batch => Envelope::from_batch(json(bytes)?).map_err(|e| GatewayError::BadShape(e.to_string())),
        IngestKind::Single(_) => Ok(Envelope::from_single(json(bytes)?)),
        IngestKind::Events if is_ndjson(headers, bytes) => Ok(parse_ndjson(bytes)),
        IngestKind::Events => Ok(Envelope::from_array_or_single(json(bytes)?)),
    }
}

/// NDJSON by content type, or by shape: several non-blank lines that each hold one object.
/// A pretty-printed single object fails the shape test because its inner lines do not start
/// with `{`.
fn is_ndjson(headers: &http::HeaderMap, bytes: &[u8]) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.contains("ndjson") || content_type.contains("jsonl") || content_type.contains("json-seq") {
        return true;
    }
    let mut lines = bytes.split(|b| *b == b'\n').map(<[u8]>::trim_ascii).filter(|l| !l.is_empty()).peekable();
    let mut count = 0;
    while let Some(line) = lines.next() {
        if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
            return false;
        }
        count += 1;
        if count >= 2 && lines.peek().is_none() {
            return true;
        }
    }
    false
}
