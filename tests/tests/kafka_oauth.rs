//! OAUTHBEARER with OIDC: a gateway configured with `sasl.oauthbearer.method=oidc` fetches its
//! token from the configured endpoint with a client_credentials grant. The endpoint here is a
//! stub on 127.0.0.1; no broker here accepts OAUTHBEARER, so the SASL handshake that would
//! present the token is not exercised (docs/kafka-auth.md says so too).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use clickstream_platform::kafka::KafkaConfig;
use clickstream_tests::{gateway_config, unique};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENT_ID: &str = "clickstream-gateway";
const CLIENT_SECRET: &str = "s3cret:with/odd+chars";
const SCOPE: &str = "kafka.produce";

/// One HTTP request as the stub received it.
#[derive(Debug, Clone)]
struct Captured {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }
}

/// A token endpoint that records each request and answers with an unsigned JWT carrying the
/// claims librdkafka reads (`sub`, `exp`).
async fn token_endpoint() -> (String, Arc<Mutex<Vec<Captured>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the token endpoint");
    let url = format!("http://{}/oauth2/token", listener.local_addr().expect("addr"));
    let captured = Arc::new(Mutex::new(Vec::new()));
    let seen = captured.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Some(request) = serve_one(stream).await {
                    seen.lock().expect("lock").push(request);
                }
            });
        }
    });
    (url, captured)
}

async fn serve_one(mut stream: TcpStream) -> Option<Captured> {
    let mut buffer = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": CLIENT_ID, "iat": now, "exp": now + 3600});
    let jwt = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode("unsigned")
    );
    let answer = json!({"access_token": jwt, "token_type": "Bearer", "expires_in": 3600}).to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    stream.write_all(response.as_bytes()).await.ok()?;
    Some(Captured { request_line, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// A port nothing listens on: the token fetch does not wait for a broker.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_client_credentials_token_fetch() {
    let (token_url, captured) = token_endpoint().await;
    let bootstrap = format!("127.0.0.1:{}", closed_port());
    let properties: BTreeMap<String, String> = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.method", "oidc"),
        ("sasl.oauthbearer.client.id", CLIENT_ID),
        ("sasl.oauthbearer.client.secret", CLIENT_SECRET),
        ("sasl.oauthbearer.scope", SCOPE),
        ("sasl.oauthbearer.token.endpoint.url", token_url.as_str()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let mut config = gateway_config(&bootstrap, &unique("events.raw"), &unique("events.dlq"));
    config.kafka = KafkaConfig { bootstrap_servers: bootstrap.clone(), properties, ..KafkaConfig::default() };
    // No broker: the spool lets the gateway start, and its producer fetches a token at once.
    let gateway = clickstream_gateway::start(config).await.expect("the gateway accepts the OIDC settings");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let request = loop {
        if let Some(first) = captured.lock().expect("lock").first().cloned() {
            break first;
        }
        assert!(tokio::time::Instant::now() < deadline, "no token request reached {token_url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    gateway.shutdown().await;

    assert_eq!(request.request_line, "POST /oauth2/token HTTP/1.1", "{request:#?}");
    let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    assert_eq!(request.header("authorization"), Some(expected.as_str()), "client id and secret as Basic auth");
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"), "{request:#?}");
    let form = request.form();
    assert_eq!(form.get("grant_type").map(String::as_str), Some("client_credentials"), "{form:?}");
    assert_eq!(form.get("scope").map(String::as_str), Some(SCOPE), "{form:?}");
    assert!(!request.body.contains(CLIENT_SECRET), "the secret travels only in the Authorization header");
}
