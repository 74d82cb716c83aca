//! One connection of the pool: a keep-alive HTTP/1.1 connection (the lean client in
//! `http1`) that reconnects after errors, or a share of an rdkafka producer for
//! the raw-kafka baseline. Either way, `send` resolves when the request's events are safe.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::http1::{Failure, Http1};
use crate::payload::Request;

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
    Kafka { producer: FutureProducer, topic: Arc<str> },
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
    /// Opens the connection now, so the first request does not pay for the handshake.
    pub async fn open(endpoint: &Endpoint) -> Self {
        match endpoint {
            Endpoint::Http { addr } => {
                let mut client = Http1::new(*addr);
                let _ = client.connect().await;
                Self::Http(HttpConnection { client })
            }
            Endpoint::Kafka { producer, topic } => Self::Kafka { producer: producer.clone(), topic: topic.clone() },
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
            Self::Kafka { producer, topic } => produce(producer, topic, request, timeout).await,
        }
    }
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

/// The `protocol` header of a Segment event, as the gateway writes it.
const SEGMENT: &str = clickstream_gateway::protocols::Protocol::Segment.as_str();

/// Produces the request's events as the gateway would (same key and headers) and waits for
/// every delivery report.
async fn produce(producer: &FutureProducer, topic: &str, request: &Request, timeout: Duration) -> Outcome {
    let mut pending = Vec::with_capacity(request.events.len());
    for event in &request.events {
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header { key: clickstream_schema::HEADER_SOURCE, value: Some("loadtest") })
            .insert(Header { key: clickstream_schema::HEADER_EVENT_TYPE, value: Some(event.kind) })
            .insert(Header { key: clickstream_schema::HEADER_PROTOCOL, value: Some(SEGMENT) });
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
