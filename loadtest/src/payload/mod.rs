//! Request payloads: simulated visitors' events, one per request as analytics.js sends them,
//! or N per `/v1/batch` request as the server SDKs send them; in Segment's protocol or, with
//! [`Protocol`], PostHog's, Snowplow's or the pixel's.

pub mod catalog;
pub mod events;
pub mod ids;
pub mod protocols;
pub mod source;
pub mod visitors;

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use catalog::Catalog;
use events::{encode, event_type, EventMeta};
use ids::{write_seq, write_stamp, MessageTag, Sequence, STAMP_WIDTH};
pub use protocols::Protocol;
use visitors::Visitor;

/// How events are packed into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mode {
    /// One event per request, on analytics.js's short paths (`/v1/t`, `/v1/p`, `/v1/i`), as
    /// `text/plain` with the write key in the body.
    Single,
    /// `events` per `POST /v1/batch`, as `application/json` with Basic auth.
    Batch { events: usize },
}

impl Mode {
    pub fn events_per_request(&self) -> usize {
        match self {
            Self::Single => 1,
            Self::Batch { events } => (*events).max(1),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Single => "single event per request".to_owned(),
            Self::Batch { events } => format!("/v1/batch of {events}"),
        }
    }
}

/// One event of a request, as produced to Kafka by the raw-kafka baseline.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    /// The Kafka key the gateway would use: the visitor's anonymous id.
    pub key: String,
    /// Segment event type, for the `event-type` header.
    pub kind: &'static str,
    pub json: Vec<u8>,
}

/// One request's worth of events.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET` (the pixel, its event in the query string) or `POST` (everything else).
    pub method: &'static str,
    pub path: Cow<'static, str>,
    pub content_type: &'static str,
    /// `Authorization` header, when the write key travels there rather than in the body.
    pub authorization: Option<Arc<str>>,
    pub body: Vec<u8>,
    pub events: Vec<EncodedEvent>,
    /// Sequence number of the first event; the others follow it.
    pub first_seq: u64,
    /// Where each event's time stamp sits: in the body, and in the event's own JSON.
    stamps: Vec<(usize, usize)>,
    /// For the pixel, the event type: the path carries the body in base64 and is made again
    /// once the body is stamped.
    pixel: Option<&'static str>,
}

impl Request {
    /// Writes the intended send time into every message id. Requests are made ahead of time,
    /// while the connection waits, so generating them never delays a send.
    pub fn stamp(&mut self, intended_us: u64) {
        for (event, &(in_body, in_event)) in self.events.iter_mut().zip(&self.stamps) {
            write_stamp(&mut self.body[in_body..], intended_us);
            write_stamp(&mut event.json[in_event..], intended_us);
        }
        if let Some(kind) = self.pixel {
            self.path = protocols::pixel_path(kind, &self.body).into();
        }
    }

    /// Gives the events the sequence numbers from `first_seq` on, in place: a request sent
    /// again from a ring goes out with message ids no earlier request had.
    pub fn renumber(&mut self, first_seq: u64) {
        self.first_seq = first_seq;
        for (offset, (event, &(in_body, in_event))) in self.events.iter_mut().zip(&self.stamps).enumerate() {
            write_seq(&mut self.body, in_body, first_seq + offset as u64);
            write_seq(&mut event.json, in_event, first_seq + offset as u64);
        }
    }

    pub fn event_count(&self) -> u64 {
        self.events.len() as u64
    }

    /// The body, ready to send.
    pub fn body_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(&self.body)
    }
}

/// Makes requests from a population of simulated visitors. Each connection owns one, so
/// generation needs no locks.
#[derive(Debug)]
pub struct Generator {
    catalog: Arc<Catalog>,
    visitors: Vec<Visitor>,
    rng: fastrand::Rng,
    sequence: Sequence,
    write_key: Arc<str>,
    authorization: Arc<str>,
    mode: Mode,
    protocol: Protocol,
    clock: WallClock,
}

impl Generator {
    pub fn new(
        catalog: Arc<Catalog>,
        visitors: usize,
        seed: u64,
        sequence: Sequence,
        write_key: &str,
        mode: Mode,
    ) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let visitors = (0..visitors.max(1)).map(|_| Visitor::new(&mut rng)).collect();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"));
        Self {
            catalog,
            visitors,
            rng,
            sequence,
            write_key: write_key.into(),
            authorization: format!("Basic {basic}").into(),
            mode,
            protocol: Protocol::Segment,
            clock: WallClock::default(),
        }
    }

    /// Sends in `protocol`'s wire form instead of Segment's. The pixel takes one event per
    /// request whatever the mode.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Reserves `count` message sequence numbers of the run and returns the first.
    pub fn reserve(&self, count: u64) -> u64 {
        self.sequence.reserve(count)
    }

    /// The next request. Its message ids carry a zero time stamp until `Request::stamp`.
    pub fn next_request(&mut self) -> Request {
        let count = if self.protocol.batches() { self.mode.events_per_request() } else { 1 };
        let first_seq = self.sequence.reserve(count as u64);
        let now = self.clock.now();
        let single = self.mode == Mode::Single || !self.protocol.batches();
        let mut path = "/v1/batch";
        let mut events = Vec::with_capacity(count);
        for offset in 0..count as u64 {
            let index = self.rng.usize(..self.visitors.len());
            let visitor = &mut self.visitors[index];
            let action = visitor.next_action(&self.catalog, &mut self.rng);
            let message_id = MessageTag { run: self.sequence.run, seq: first_seq + offset, intended_us: 0 }.format();
            let meta = EventMeta {
                message_id: &message_id,
                timestamp: &now,
                write_key: single.then_some(&*self.write_key),
                sent_at: single.then_some(&*now),
            };
            let mut json = Vec::with_capacity(1536);
            encode(visitor, &action, &self.catalog, &meta, &mut json);
            let (kind, short_path) = event_type(&action);
            if single {
                path = short_path;
            }
            events.push(EncodedEvent { key: visitor.anonymous_id.clone(), kind, json });
        }
        let in_event: Vec<usize> = events.iter().map(|e| stamp_offset(&e.json)).collect();
        match self.protocol {
            Protocol::Segment => segment_request(path, events, &in_event, single, &now, &self.authorization, first_seq),
            Protocol::Pixel => {
                let kind = events[0].kind;
                let body = events[0].json.clone();
                let path = protocols::pixel_path(kind, &body).into();
                let stamps = vec![(in_event[0], in_event[0])];
                Request {
                    method: "GET",
                    path,
                    content_type: "",
                    authorization: None,
                    body,
                    events,
                    first_seq,
                    stamps,
                    pixel: Some(kind),
                }
            }
            protocol => {
                let sent_at_ms = self.clock.millis;
                let made = protocols::body(protocol, &events, &self.write_key, sent_at_ms, !single);
                let stamps = stamps_in(&made.body, &events, &in_event);
                Request {
                    method: "POST",
                    path: made.path,
                    content_type: made.content_type,
                    authorization: None,
                    body: made.body,
                    events,
                    first_seq,
                    stamps,
                    pixel: None,
                }
            }
        }
    }
}

/// A Segment request: the event alone on its short path, or a `/v1/batch` of them.
fn segment_request(
    path: &'static str,
    events: Vec<EncodedEvent>,
    in_event: &[usize],
    single: bool,
    now: &str,
    authorization: &Arc<str>,
    first_seq: u64,
) -> Request {
    let (body, content_type, authorization, stamps) = if single {
        (events[0].json.clone(), "text/plain", None, vec![(in_event[0], in_event[0])])
    } else {
        let size = events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 64;
        let mut body = Vec::with_capacity(size);
        let mut stamps = Vec::with_capacity(events.len());
        body.extend_from_slice(b"{\"batch\":[");
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            stamps.push((body.len() + in_event[i], in_event[i]));
            body.extend_from_slice(&event.json);
        }
        body.extend_from_slice(format!("],\"sentAt\":\"{now}\"}}").as_bytes());
        (body, "application/json", Some(authorization.clone()), stamps)
    };
    Request {
        method: "POST",
        path: path.into(),
        content_type,
        authorization,
        body,
        events,
        first_seq,
        stamps,
        pixel: None,
    }
}

/// Where each event's message id ends up in a body another protocol made of it: the id is
/// copied verbatim, in event order.
fn stamps_in(body: &[u8], events: &[EncodedEvent], in_event: &[usize]) -> Vec<(usize, usize)> {
    let mut from = 0;
    events
        .iter()
        .zip(in_event)
        .map(|(event, &in_event)| {
            let id =
                &event.json[in_event + STAMP_WIDTH - message_id_len(&event.json, in_event)..in_event + STAMP_WIDTH];
            let at = memchr::memmem::find(&body[from..], id).map_or(0, |at| from + at);
            from = at + id.len();
            (from - STAMP_WIDTH, in_event)
        })
        .collect()
}

/// The length of the message id whose stamp starts at `stamp_at`.
fn message_id_len(json: &[u8], stamp_at: usize) -> usize {
    const KEY: &[u8] = b"\"messageId\":\"";
    let start = memchr::memmem::find(json, KEY).map_or(0, |at| at + KEY.len());
    stamp_at + STAMP_WIDTH - start
}

/// The wall-clock time as events carry it, formatted once per millisecond: at tens of
/// thousands of requests a second, most requests share their millisecond with the last one.
#[derive(Debug, Default)]
struct WallClock {
    millis: i64,
    text: Arc<str>,
}

impl WallClock {
    fn now(&mut self) -> Arc<str> {
        let now = chrono::Utc::now();
        if now.timestamp_millis() != self.millis || self.text.is_empty() {
            self.millis = now.timestamp_millis();
            self.text = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into();
        }
        self.text.clone()
    }
}

/// Offset of the time stamp inside an event's JSON: the end of its message id.
fn stamp_offset(json: &[u8]) -> usize {
    const KEY: &[u8] = b"\"messageId\":\"";
    let start = memchr::memmem::find(json, KEY).map_or(0, |at| at + KEY.len());
    let end = memchr::memchr(b'"', &json[start..]).map_or(json.len(), |len| start + len);
    end - STAMP_WIDTH
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickstream_schema::{Envelope, Event};

    fn generator(mode: Mode) -> Generator {
        Generator::new(Arc::new(Catalog::builtin()), 50, 11, Sequence::new(0xabcd), "wk", mode)
    }

    #[test]
    fn batches_are_valid_segment_batches() {
        let mut generator = generator(Mode::Batch { events: 20 });
        for round in 0..50u64 {
            let mut request = generator.next_request();
            request.stamp(round * 1000);
            assert_eq!(request.path, "/v1/batch");
            assert_eq!(request.first_seq, round * 20);
            let value: serde_json::Value = serde_json::from_slice(&request.body).expect("batch is JSON");
            let envelope = Envelope::from_batch(value).expect("a Segment batch");
            assert!(envelope.sent_at.is_some());
            assert_eq!(envelope.items.len(), 20);
            for (offset, item) in envelope.items.into_iter().enumerate() {
                let event = Event::from_value(item.expect("parsed"), None).map_err(|(e, _)| e).expect("valid event");
                let tag =
                    MessageTag::parse(event.message_id.as_deref().unwrap_or_default().as_bytes()).expect("our id");
                assert_eq!((tag.run, tag.seq, tag.intended_us), (0xabcd, round * 20 + offset as u64, round * 1000));
                assert!(event.context.as_ref().is_some_and(|c| c.contains_key("page") && c.contains_key("userAgent")));
            }
        }
    }

    #[test]
    fn single_events_carry_write_key_and_match_their_path() {
        let mut generator = generator(Mode::Single);
        let mut paths = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let mut request = generator.next_request();
            request.stamp(77);
            assert_eq!(request.content_type, "text/plain");
            assert!(request.authorization.is_none());
            let value: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
            assert_eq!(value["writeKey"], "wk");
            let tag = MessageTag::parse(value["messageId"].as_str().unwrap_or_default().as_bytes()).expect("our id");
            assert_eq!(tag.intended_us, 77);
            let kind = value["type"].as_str().expect("type").to_owned();
            let letter = request.path.trim_start_matches("/v1/");
            assert!(kind.starts_with(letter), "{kind} sent to {}", request.path);
            Event::from_value(value, None).map_err(|(e, _)| e).expect("valid event");
            paths.insert(request.path);
        }
        assert_eq!(paths.len(), 3, "page, track and identify all occur: {paths:?}");
    }

    #[test]
    fn landing_pages_carry_campaigns_and_referrers_in_the_expected_mix() {
        let mut generator = generator(Mode::Batch { events: 100 });
        let (mut landings, mut with_campaign, mut with_referrer) = (0, 0, 0);
        for _ in 0..100 {
            for event in generator.next_request().events {
                let value: serde_json::Value = serde_json::from_slice(&event.json).expect("JSON");
                if value["type"] == "page" {
                    landings += 1;
                    with_campaign += i32::from(value["context"].get("campaign").is_some());
                    with_referrer += i32::from(value["context"]["page"]["referrer"] != "");
                }
            }
        }
        // 38% of sessions come from campaigns and 60% have a referrer (see TRAFFIC).
        let share = |n: i32| f64::from(n) / f64::from(landings);
        assert!(landings > 500, "{landings}");
        assert!((0.30..0.46).contains(&share(with_campaign)), "campaign share {}", share(with_campaign));
        assert!((0.52..0.68).contains(&share(with_referrer)), "referrer share {}", share(with_referrer));
    }
}
