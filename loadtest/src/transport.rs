//! One connection of the pool: a keep-alive HTTP/1.1 connection (the lean client in
//! `http1`) that reconnects after errors, or a share of an rdkafka producer for
//! the raw-kafka baseline. Either way, `send` resolves when the request's events are safe.
//! Also how a run opens its connections, each paired with where it takes its requests.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use clickstream_gateway::protocols::Protocol as GatewayProtocol;
use clickstream_gateway::record::RecordHeaders;
use clickstream_schema::EventType;
use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::http1::{Failure, Http1};
use crate::payload::ids::Sequence;
use crate::payload::source::RequestSource;
use crate::payload::{EncodedEvent, Protocol, Request};
use crate::runner::RunOptions;

/// How a request ended: a status label for the report, and whether it counts as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Cow<'static, str>,
    pub ok: bool,
}

impl Outcome {
    fn failed(status: impl Into<Cow<'static, str>>) -> Self {
        Self { status: status.into(), ok: false }
    }
}

/// Where requests go.
#[derive(Clone)]
pub enum Endpoint {
    Http { addr: SocketAddr },
    Kafka { producer: FutureProducer, topic: Arc<str> },
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http { addr } => write!(f, "Http({addr})"),
            Self::Kafka { topic, .. } => write!(f, "Kafka({topic})"),
        }
    }
}

/// One connection of the pool.
pub enum Connection {
    Http(HttpConnection),
    /// `protocol` is the run's, as the gateway names it in the `protocol` header; `source` is
    /// the source name every record carries, made once rather than per request.
    Kafka {
        producer: FutureProducer,
        topic: Arc<str>,
        protocol: GatewayProtocol,
        source: Arc<str>,
    },
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(connection) => connection.fmt(f),
            Self::Kafka { topic, .. } => write!(f, "Kafka({topic})"),
        }
    }
}

impl Connection {
    /// Opens the connection now, so the first request does not pay for the handshake; a
    /// connect that fails or takes longer than `connect_within` is left to that request. Requests
    /// speak `protocol`: raw-kafka writes the headers the gateway would for it.
    pub async fn open(endpoint: &Endpoint, protocol: Protocol, connect_within: Duration) -> Self {
        match endpoint {
            Endpoint::Http { addr } => {
                let mut client = Http1::new(*addr);
                // A server that accepts nothing would hold an unbounded connect for the kernel's
                // SYN retries, about two minutes, and a growing pool's grower with it. Cut short,
                // it leaves no stream, as a refused one does: the connection reads as not open
                // and its first request connects again, under the request's own timeout.
                let _ = tokio::time::timeout(connect_within, client.connect()).await;
                Self::Http(HttpConnection { client })
            }
            Endpoint::Kafka { producer, topic } => {
                let (producer, topic, protocol) = (producer.clone(), topic.clone(), gateway_protocol(protocol));
                Self::Kafka { producer, topic, protocol, source: Arc::from(LOADTEST_SOURCE) }
            }
        }
    }

    /// Whether the connection is still up (a Kafka share always is).
    pub fn is_open(&self) -> bool {
        match self {
            Self::Http(connection) => connection.client.is_open(),
            Self::Kafka { .. } => true,
        }
    }

    /// Sends one request and waits for its answer, at most `timeout`.
    pub async fn send(&mut self, request: &Request, timeout: Duration) -> Outcome {
        match self {
            Self::Http(connection) => connection.send(request, timeout).await,
            Self::Kafka { producer, topic, protocol, source } => {
                produce(producer, topic, *protocol, source, request, timeout).await
            }
        }
    }
}

/// Opens connections `indices` of a run, each with where it takes its requests. A connection's
/// visitors are its share of `options.visitors` over the first `options.connections`, so
/// connections opened later bring visitors of their own, as new clients would.
pub(crate) async fn open_connections(
    endpoint: &Endpoint,
    reads_bodies: bool,
    options: &RunOptions,
    sequence: &Sequence,
    indices: Range<usize>,
) -> Vec<(Connection, RequestSource)> {
    let open = |_| Connection::open(endpoint, options.protocol, options.request_timeout);
    let opened = futures::future::join_all(indices.clone().map(open)).await;
    let share_of = options.connections.max(1);
    opened
        .into_iter()
        .zip(indices)
        .map(|(connection, index)| (connection, options.connection_requests(reads_bodies, sequence, index, share_of)))
        .collect()
}

/// A keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConnection {
    client: Http1,
}

impl HttpConnection {
    async fn send(&mut self, request: &Request, timeout: Duration) -> Outcome {
        let body: &[u8] = if request.method == "GET" { &[] } else { &request.body };
        let exchange = self.client.request(
            request.method,
            &request.path,
            request.content_type,
            request.authorization.as_deref(),
            body,
        );
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(status)) => Outcome { status: status_label(status), ok: (200..300).contains(&status) },
            Ok(Err(failure)) => Outcome::failed(match failure {
                Failure::Connect => "connect",
                Failure::Io { .. } => "io",
                Failure::Protocol => "protocol",
            }),
            Err(_) => {
                // The answer may still come on this connection; a fresh one avoids mixing it up.
                self.client.reset();
                Outcome::failed("timeout")
            }
        }
    }
}

/// Status labels without an allocation for the usual ones.
fn status_label(status: u16) -> Cow<'static, str> {
    match status {
        200 => Cow::Borrowed("200"),
        202 => Cow::Borrowed("202"),
        400 => Cow::Borrowed("400"),
        413 => Cow::Borrowed("413"),
        429 => Cow::Borrowed("429"),
        503 => Cow::Borrowed("503"),
        other => Cow::Owned(other.to_string()),
    }
}

/// The source name raw-kafka's records carry, as the gateway's would carry the source's name.
const LOADTEST_SOURCE: &str = "loadtest";

/// The gateway's name for requests in `protocol`'s wire form. Each protocol the generator
/// speaks has a gateway adapter of its own; the match has no catch-all so that a new one must
/// choose its name here rather than pass for Segment.
fn gateway_protocol(protocol: Protocol) -> GatewayProtocol {
    match protocol {
        Protocol::Segment => GatewayProtocol::Segment,
        Protocol::Posthog => GatewayProtocol::PostHog,
        Protocol::Snowplow => GatewayProtocol::Snowplow,
        Protocol::Pixel => GatewayProtocol::Pixel,
    }
}

/// The headers the gateway writes on `event` when it came in by `protocol` from `source`: its
/// own `RecordHeaders`, so the two cannot drift apart.
fn event_headers(event: &EncodedEvent, protocol: GatewayProtocol, source: &Arc<str>) -> OwnedHeaders {
    let written = RecordHeaders::new(source.clone(), EventType::parse(event.kind), protocol);
    written.pairs().fold(OwnedHeaders::new_with_capacity(written.len()), |headers, (key, value)| {
        headers.insert(Header { key, value: Some(value) })
    })
}

/// Produces the request's events as the gateway would (same key and headers) and waits for
/// every delivery report.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    protocol: GatewayProtocol,
    source: &Arc<str>,
    request: &Request,
    timeout: Duration,
) -> Outcome {
    let mut pending = Vec::with_capacity(request.events.len());
    for event in &request.events {
        let headers = event_headers(event, protocol, source);
        let record = FutureRecord::to(topic).key(event.key.as_bytes()).payload(&event.json).headers(headers);
        match producer.send_result(record) {
            Ok(delivery) => pending.push(delivery),
            Err((error, _)) => return Outcome::failed(kafka_status(&error)),
        }
    }
    match tokio::time::timeout(timeout, join_all(pending)).await {
        Err(_) => Outcome::failed("timeout"),
        Ok(reports) => {
            for report in reports {
                match report {
                    Ok(Ok(_)) => {}
                    Ok(Err((error, _))) => return Outcome::failed(kafka_status(&error)),
                    Err(_) => return Outcome::failed("kafka:canceled"),
                }
            }
            Outcome { status: Cow::Borrowed("delivered"), ok: true }
        }
    }
}

fn kafka_status(error: &rdkafka::error::KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("kafka:{code:?}"),
        None => "kafka:error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clickstream_gateway::endpoints::Endpoint as GatewayEndpoint;
    use rdkafka::message::Headers as _;

    use super::*;
    use crate::payload::catalog::Catalog;
    use crate::payload::ids::Sequence;
    use crate::payload::protocols::PROTOCOLS;
    use crate::payload::{Generator, Mode};

    /// Each protocol's requests are routed by the gateway's own endpoint table; the adapter it
    /// picks names the protocol, and raw-kafka must write the very headers the gateway would.
    #[test]
    fn raw_kafka_writes_the_headers_the_gateway_would_for_the_runs_protocol() {
        for protocol in PROTOCOLS {
            for mode in [Mode::Single, Mode::Batch { events: 3 }] {
                let mut generator = Generator::new(Arc::new(Catalog::builtin()), 20, 5, Sequence::new(7), "wk", mode)
                    .with_protocol(protocol);
                let request = generator.next_request();
                let method = http::Method::from_bytes(request.method.as_bytes()).expect("method");
                let path = request.path.split('?').next().unwrap_or_default();
                let GatewayEndpoint::Ingest(adapter) = GatewayEndpoint::resolve(&method, path) else {
                    panic!("{protocol:?} {mode:?}: {method} {path} is no ingest endpoint of the gateway");
                };
                assert_eq!(gateway_protocol(protocol), adapter.protocol(), "{protocol:?} {mode:?}");
                let source: Arc<str> = Arc::from(LOADTEST_SOURCE);
                for event in &request.events {
                    let written = event_headers(event, gateway_protocol(protocol), &source);
                    let protocol_header = written.iter().find(|h| h.key == clickstream_schema::HEADER_PROTOCOL);
                    let value = protocol_header.and_then(|h| h.value).map(std::str::from_utf8);
                    assert_eq!(value, Some(Ok(adapter.protocol().as_str())), "{protocol:?} {mode:?}");
                    assert_eq!(written.count(), 3, "source, event type and protocol: {protocol:?} {mode:?}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_connect_to_a_server_that_accepts_nothing_gives_up_within_its_bound() {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("address");
        // Once the accept queue is full the kernel drops further SYNs, so a connect hangs.
        let mut queued = Vec::new();
        while let Ok(connected) =
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await
        {
            queued.push(connected.expect("a listener with room accepts"));
            assert!(queued.len() < 64, "the accept queue never filled");
        }
        // A probe that timed out on a slow machine before any was queued proves nothing.
        assert!(!queued.is_empty(), "the listener queued no connection before it stopped accepting");
        let bound = Duration::from_millis(300);
        let endpoint = Endpoint::Http { addr };
        let started = std::time::Instant::now();
        let opening = Connection::open(&endpoint, Protocol::Segment, bound);
        let connection = tokio::time::timeout(Duration::from_secs(5), opening).await.expect("open gives up");
        let took = started.elapsed();
        assert!(!connection.is_open(), "a connect that never completed leaves the connection closed");
        assert!(took >= bound && took < bound + Duration::from_secs(1), "gave up after {took:?}, bound {bound:?}");
    }
}
