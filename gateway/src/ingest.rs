//! The ingest pipeline shared by every protocol: body → adapter → canonical events → validation
//! → edge fields → Kafka records, answered only after the sink reports every record safe.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use clickstream_schema::{format_timestamp, DeadLetter, EventError, EventType, PayloadError, RawEnvelope};
use http::{header, Request};
use hyper::body::Body;

use crate::app::App;
use crate::body::read_decoded;
use crate::dedup::DedupKey;
use crate::edge::EdgeContext;
use crate::endpoints::IngestKind;
use crate::error::{GatewayError, RejectedItem};
use crate::plan::PlanOutcome;
use crate::protocols::{Adapter, Canonical, Outcome, Protocol};
use crate::record::{Record, RecordHeaders};
use crate::routing::Target;
use crate::sink::SinkError;
use crate::sources::{basic_auth_user, header_write_key, Source};
use crate::trace::RequestTrace;

impl App {
    /// Runs the shared pipeline over what `adapter` makes of the request.
    pub(crate) async fn ingest<B>(
        &self,
        adapter: Adapter,
        request: Request<B>,
        peer: SocketAddr,
    ) -> Result<Outcome, GatewayError>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let trace = RequestTrace::start(self.state.metrics.telemetry().tracer(), adapter.template());
        let result = self.ingest_traced(adapter, request, peer, &trace).await;
        trace.finish(result.as_ref().err().map(GatewayError::kind));
        result
    }

    async fn ingest_traced<B>(
        &self,
        adapter: Adapter,
        request: Request<B>,
        peer: SocketAddr,
        trace: &RequestTrace,
    ) -> Result<Outcome, GatewayError>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let state = &self.state;
        // Before any parsing: under overload, the cheapest answer is the most useful one.
        if let Some(wait) = state.sink.shed() {
            return Err(GatewayError::KafkaBehind { wait_ms: wait.as_millis() as u64 });
        }
        let (parts, body) = request.into_parts();
        let edge = EdgeContext::from_request(&parts.headers, peer, &state.config);
        state.protection.check_ip(edge.ip())?;
        // A key in the Authorization header is checked before the body is even read.
        let header_source = basic_auth_user(&parts.headers).map(|key| state.sources.lookup(&key)).transpose()?;
        let (limit, timeout) = (state.config.limits.max_batch_bytes, state.config.http.body_read_timeout_ms);
        let parsing = trace.phase("parse");
        let bytes = read_decoded(body, &parts.headers, limit, Duration::from_millis(timeout)).await?;
        let Canonical { body, write_key, source_name, set_cookie, rejected, positions } =
            adapter.translate(&parts, bytes, &state.config)?;
        // One scan validates the body and finds each event's members in the client's bytes.
        let max_events = state.config.limits.max_batch_events;
        let (envelope, endpoint_type) = match &body {
            Some((bytes, kind)) => (parse_envelope(*kind, &parts.headers, bytes, max_events)?, kind.endpoint_type()),
            None => (RawEnvelope::default(), None),
        };
        drop(parsing);
        // Batches, arrays and NDJSON were refused as they were read; this is left for a single
        // event under a limit of 0.
        if envelope.event_count() > max_events {
            return Err(GatewayError::TooManyEvents { limit: max_events });
        }
        let source = match header_source {
            Some(source) => Ok(source),
            None => self.body_or_header_source(
                envelope.write_key.clone().or(write_key),
                source_name.as_deref(),
                &parts.headers,
            ),
        };
        let source = source.inspect_err(|_| rejected.iter().for_each(|(item, _)| state.metrics.rejected(item.kind)))?;
        let source = &*source;
        source.check_origin(parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()))?;
        state.protection.check_source(&source.name)?;

        let validating = trace.phase("validate");
        let position = |index: usize| positions.as_ref().and_then(|p| p.get(index).copied()).unwrap_or(index);
        let mut batch = self.to_records(endpoint_type, envelope, source, &edge, adapter.protocol(), position)?;
        if !rejected.is_empty() {
            batch.rejected.extend(rejected);
            batch.rejected.sort_by_key(|(item, _)| item.index);
        }
        drop(validating);
        // Fan-out makes several records of one event, so events are counted, not records.
        let (accepted, rejected) = (batch.accepted, batch.rejected.len());
        trace.counts(accepted, rejected);
        batch.rejected.iter().for_each(|(item, _)| state.metrics.rejected(item.kind));
        state.metrics.suppressed(batch.suppressed);
        let nothing_accepted =
            accepted == 0 && batch.duplicates == 0 && batch.suppressed == 0 && batch.dropped_by_plan == 0;
        // A plan's `dlq` asks for the dead letter even when the client is told to fix its request.
        let plan_rejected = batch.rejected.iter().any(|(item, _)| item.kind == crate::plan::VIOLATION_KIND);
        if nothing_accepted && !(rejected > 0 && (adapter.dead_letters_when_nothing_accepted() || plan_rejected)) {
            return Err(match rejected {
                0 => GatewayError::BadShape("request holds no events".into()),
                _ => GatewayError::NoValidEvents(batch.rejected.into_iter().map(|(item, _)| item).collect()),
            });
        }
        let max_written = written_limit(&state.config.limits);
        let letters = dead_letters(&batch, source, adapter, &state.config.topics.dlq, max_written)?;
        batch.records.extend(letters);
        if !batch.records.is_empty() {
            trace.in_scope(state.sink.deliver(batch.records)).await.map_err(|error| match error {
                SinkError::Unavailable(reason) => GatewayError::Unavailable(reason),
                SinkError::Rejected(reason) => GatewayError::RejectedByKafka(reason),
            })?;
        }
        // Only now are these events safe, so only now may a retry of them be dropped.
        state.dedup.remember(batch.client_ids);
        state.metrics.accepted(accepted);
        let rejected: Vec<RejectedItem> = batch.rejected.into_iter().map(|(item, _)| item).collect();
        if nothing_accepted {
            return Err(GatewayError::NoValidEvents(rejected));
        }
        Ok(Outcome { rejected, set_cookie })
    }

    /// Validates, stamps and encodes each event; drops retried duplicates. Refuses the whole
    /// request once what it writes passes [`WRITTEN_PER_BODY_BYTE`] times the body limit.
    fn to_records(
        &self,
        endpoint_type: Option<EventType>,
        envelope: RawEnvelope<'_>,
        source: &Source,
        edge: &EdgeContext,
        protocol: Protocol,
        position: impl Fn(usize) -> usize,
    ) -> Result<Prepared, GatewayError> {
        let state = &self.state;
        let received_at = Utc::now();
        let max_event_bytes = state.config.limits.max_event_bytes;
        let max_written = written_limit(&state.config.limits);
        let routes = state.routing.for_request(&state.metrics);
        let with_properties = routes.reads_properties();
        let connection = edge.connection();
        // One lookup per request; a source without a plan costs nothing more per event.
        let plan = state.plans.for_source(&source.name);
        let mut prepared = Prepared::default();
        let (batch, events) = envelope.into_events(endpoint_type);
        for (index, outcome) in events.into_iter().enumerate() {
            let index = position(index);
            let event = match outcome {
                Ok(event) => event,
                Err(rejection) => {
                    let item =
                        RejectedItem { index, kind: rejection.error.kind(), reason: rejection.error.to_string() };
                    prepared.rejected.push((item, rejection.payload));
                    continue;
                }
            };
            if state.suppression.names(event.user_id().as_deref(), event.anonymous_id().as_deref()) {
                prepared.suppressed += 1;
                continue;
            }
            let client_id = event.message_id().map(|id| state.dedup.key(&source.name, &id));
            if client_id.is_some_and(|key| state.dedup.is_duplicate(key)) {
                prepared.duplicates += 1;
                continue;
            }
            let annotation =
                match plan.as_deref().map(|p| crate::plan::apply(p, &source.name, &event, index, &state.metrics)) {
                    None | Some(PlanOutcome::Pass) => None,
                    Some(PlanOutcome::Annotate(verdict)) => Some(verdict),
                    Some(PlanOutcome::Reject(item, payload)) => {
                        prepared.rejected.push((item, payload));
                        continue;
                    }
                    Some(PlanOutcome::Drop) => {
                        prepared.dropped_by_plan += 1;
                        continue;
                    }
                };
            let mut payload = event.splice(&batch, received_at, &connection);
            prepared.written += payload.len();
            if prepared.written > max_written {
                return Err(GatewayError::WrittenTooLarge { limit: max_written });
            }
            if let Some(annotated) = annotation.and_then(|verdict| crate::plan::annotate(&payload, &verdict)) {
                payload = annotated;
            }
            if payload.len() > max_event_bytes {
                let error = EventError::TooLarge { size: payload.len(), limit: max_event_bytes };
                let item = RejectedItem { index, kind: error.kind(), reason: error.to_string() };
                // The event as the client sent it, not the spliced copy, which a batch's
                // `context` or a long User-Agent can make many times larger.
                prepared.rejected.push((item, event.to_value()));
                continue;
            }
            prepared.client_ids.extend(client_id);
            prepared.accepted += 1;
            let facts = event.routing_view(&batch, received_at, with_properties);
            let targets = routes.targets(&facts, &source.name, received_at);
            let headers = RecordHeaders::new(source.name.clone(), Some(event.kind()), protocol);
            push_records(&mut prepared.records, targets, payload, &headers);
        }
        prepared.received_at = format_timestamp(received_at);
        Ok(prepared)
    }

    /// A write key wins over a source named by protocol configuration: it is the more explicit.
    fn body_or_header_source(
        &self,
        body_write_key: Option<String>,
        configured_source: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Result<Arc<Source>, GatewayError> {
        match (body_write_key.or_else(|| header_write_key(headers)), configured_source) {
            (Some(key), _) => self.state.sources.lookup(&key),
            (None, Some(name)) => self.state.sources.lookup_name(name),
            (None, None) => Err(GatewayError::MissingWriteKey),
        }
    }
}

/// How many bytes a request may write to Kafka per byte of the body limit
/// (`limits.max_batch_bytes`): 8 MiB by default. Each event gets the batch's `context` and
/// `integrations`, the User-Agent and the edge's fields copied in, so a body of tiny events
/// could otherwise write gigabytes; real batches write 1–3 times their size, 500 KiB of
/// the smallest valid events with a long User-Agent about 12 times.
const WRITTEN_PER_BODY_BYTE: usize = 16;

/// What one request may write to Kafka, dead letters included.
fn written_limit(limits: &clickstream_schema::Limits) -> usize {
    limits.max_batch_bytes.saturating_mul(WRITTEN_PER_BODY_BYTE)
}

/// A request's events, ready to deliver.
#[derive(Debug, Default)]
struct Prepared {
    records: Vec<Record>,
    /// Events accepted; each may have several records (fan-out).
    accepted: usize,
    rejected: Vec<(RejectedItem, serde_json::Value)>,
    /// Client-supplied ids of the accepted events, for dedup once they are safe.
    client_ids: Vec<DedupKey>,
    duplicates: usize,
    /// Events dropped for a suppressed identity: answered as accepted, never produced.
    suppressed: usize,
    /// Events discarded by a tracking plan's `drop`: answered as accepted, never produced.
    dropped_by_plan: usize,
    /// Bytes of the accepted events' records so far (one copy each), against the request's
    /// budget.
    written: usize,
    received_at: String,
}

/// One record per target; the payload is copied for all but the last.
fn push_records(out: &mut Vec<Record>, targets: Vec<Target>, payload: Vec<u8>, headers: &RecordHeaders) {
    let mut payload = Some(payload);
    let last = targets.len().saturating_sub(1);
    for (index, Target { topic, key, partition }) in targets.into_iter().enumerate() {
        let Some(payload) = (if index == last { payload.take() } else { payload.clone() }) else { break };
        out.push(Record { topic, key, partition, payload, headers: headers.clone() });
    }
}

/// Dead-letter records for the rejected events of an accepted request. They count against the
/// request's written budget with its accepted events: 160,000 `{}` items beside one valid
/// event made 160,000 letters.
fn dead_letters(
    prepared: &Prepared,
    source: &Source,
    adapter: Adapter,
    topic: &str,
    max_written: usize,
) -> Result<Vec<Record>, GatewayError> {
    let mut written = prepared.written;
    prepared
        .rejected
        .iter()
        .map(|(item, payload)| {
            let letter = DeadLetter {
                reason_kind: item.kind.to_owned(),
                reason: item.reason.clone(),
                source: source.name.to_string(),
                index: adapter.indexed().then_some(item.index),
                received_at: prepared.received_at.clone(),
                payload: payload.clone(),
                payload_truncated: false,
            };
            let payload = letter.to_json();
            written += payload.len();
            if written > max_written {
                return Err(GatewayError::WrittenTooLarge { limit: max_written });
            }
            Ok(Record {
                topic: topic.to_owned(),
                key: None,
                partition: None,
                payload,
                headers: RecordHeaders::new(source.name.clone(), None, adapter.protocol()),
            })
        })
        .collect()
}

impl IngestKind {
    pub(crate) fn endpoint_type(self) -> Option<clickstream_schema::EventType> {
        match self {
            Self::Single(kind) => Some(kind),
            Self::Batch | Self::Events => None,
        }
    }
}

fn parse_envelope<'r>(
    kind: IngestKind,
    headers: &http::HeaderMap,
    bytes: &'r [u8],
    max_events: usize,
) -> Result<RawEnvelope<'r>, GatewayError> {
    let parsed = match kind {
        IngestKind::Batch => RawEnvelope::from_batch_capped(bytes, max_events),
        IngestKind::Single(_) => RawEnvelope::from_single(bytes),
        IngestKind::Events if is_ndjson(headers, bytes) => RawEnvelope::from_ndjson_capped(bytes, max_events),
        IngestKind::Events => RawEnvelope::from_array_or_single_capped(bytes, max_events),
    };
    parsed.map_err(|e| match e {
        PayloadError::InvalidJson(_) => GatewayError::InvalidJson(e.to_string()),
        PayloadError::BadShape(_) => GatewayError::BadShape(e.to_string()),
        PayloadError::TooManyEvents { limit } => GatewayError::TooManyEvents { limit },
    })
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
