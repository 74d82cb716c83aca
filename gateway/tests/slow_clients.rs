//! Slowloris protection on a real socket: a client that stalls in its headers is cut off, and
//! one that stalls in its body gets 408, while other clients are served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_gateway::config::SourceConfig;
use clickstream_gateway::server::{serve_with, ServeOptions};
use clickstream_gateway::sink::NullSink;
use clickstream_gateway::{app, AppState, GatewayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(body_timeout_ms: u64, header_timeout: Duration) -> std::net::SocketAddr {
    let mut config = GatewayConfig::default();
    config.http.body_read_timeout_ms = body_timeout_ms;
    config.sources.push(SourceConfig { name: "s".into(), write_key: "k".into(), allowed_origins: vec!["*".into()] });
    let handler = Arc::new(app(AppState::new(config, Arc::new(NullSink)).expect("valid routing")));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options =
        ServeOptions { header_read_timeout: header_timeout, max_connections: 16, grace: Duration::from_secs(1) };
    tokio::spawn(serve_with(
        listener,
        move |request, peer| {
            let handler = handler.clone();
            async move { handler.handle(request, peer).await }
        },
        std::future::pending(),
        options,
    ));
    addr
}

async fn read_all(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

#[tokio::test]
async fn a_stalled_body_gets_408() {
    let addr = start(300, Duration::from_secs(5)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /v1/batch HTTP/1.1\r\nhost: x\r\nx-write-key: k\r\ncontent-length: 100\r\n\r\n{\"batch\":")
        .await
        .expect("write");
    let (response, waited) = read_all(&mut stream, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("body_timeout"), "{response}");
    assert!(waited < Duration::from_secs(3), "answered after the body timeout, not the test's: {waited:?}");
}

#[tokio::test]
async fn stalled_headers_are_cut_off_while_others_are_served() {
    let addr = start(5_000, Duration::from_millis(300)).await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"POST /v1/batch HTTP/1.1\r\nhost: x\r\n").await.expect("write");

    let mut quick = TcpStream::connect(addr).await.expect("connect");
    quick.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.expect("write");
    let (answer, _) = read_all(&mut quick, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let (response, waited) = read_all(&mut slow, Duration::from_secs(5)).await;
    assert!(waited < Duration::from_secs(3), "slow client held the connection for {waited:?}: {response:?}");
    assert!(!response.starts_with("HTTP/1.1 200"), "{response}");
}
