//! One connection of the pool: a keep-alive HTTP/1.1 connection (hyper's client over
//! hyper-util's tokio glue) that reconnects after errors, or a share of an rdkafka producer for
//! the raw-kafka baseline. Either way, `send` resolves when the request's events are safe.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use http::{header, Method};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::net::TcpStream;

use crate::payload::Request;

/// How a request ended: a status label for the report, and whether it counts as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: String,
    pub ok: bool,
}

impl Outcome {
    fn failed(status: impl Into<String>) -> Self {
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
                let mut connection = HttpConnection { addr: *addr, sender: None };
                let _ = connection.connect().await;
                Self::Http(connection)
            }
            Endpoint::Kafka { producer, topic } => Self::Kafka { producer: producer.clone(), topic: topic.clone() },
        }
    }

    /// Whether the connection is still up (a Kafka share always is).
    pub fn is_open(&self) -> bool {
        match self {
            Self::Http(connection) => connection.sender.as_ref().is_some_and(|s| !s.is_closed()),
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
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConnection {
    async fn connect(&mut self) -> Result<(), Outcome> {
        let stream = TcpStream::connect(self.addr).await.map_err(|_| Outcome::failed("connect"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Outcome::failed("connect"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    async fn send(&mut self, request: &Request, timeout: Duration) -> Outcome {
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(outcome)) => {
                self.sender = None;
                outcome
            }
            Err(_) => {
                // The answer may still come on this connection; a fresh one avoids mixing it up.
                self.sender = None;
                Outcome::failed("timeout")
            }
        }
    }

    async fn exchange(&mut self, request: &Request) -> Result<Outcome, Outcome> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().ok_or_else(|| Outcome::failed("connect"))?;
        sender.ready().await.map_err(|_| Outcome::failed("io"))?;
        let mut builder = http::Request::builder()
            .method(Method::POST)
            .uri(request.path)
            .header(header::HOST, self.addr.to_string())
            .header(header::CONTENT_TYPE, request.content_type)
            .header(header::USER_AGENT, "clickstream-loadtest");
        if let Some(authorization) = &request.authorization {
            builder = builder.header(header::AUTHORIZATION, &**authorization);
        }
        let http_request = builder.body(Full::new(request.body_bytes())).map_err(|_| Outcome::failed("bad request"))?;
        let response = sender.send_request(http_request).await.map_err(|_| Outcome::failed("io"))?;
        let status = response.status();
        response.into_body().collect().await.map_err(|_| Outcome::failed("io"))?;
        Ok(Outcome { status: status.as_u16().to_string(), ok: status.is_success() })
    }
}

/// Produces the request's events as the gateway would (same key and headers) and waits for
/// every delivery report.
async fn produce(producer: &FutureProducer, topic: &str, request: &Request, timeout: Duration) -> Outcome {
    let mut pending = Vec::with_capacity(request.events.len());
    for event in &request.events {
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header { key: clickstream_schema::HEADER_SOURCE, value: Some("loadtest") })
            .insert(Header { key: clickstream_schema::HEADER_EVENT_TYPE, value: Some(event.kind) });
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
            Outcome { status: "delivered".to_owned(), ok: true }
        }
    }
}

fn kafka_status(error: &rdkafka::error::KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("kafka:{code:?}"),
        None => "kafka:error".to_owned(),
    }
}
