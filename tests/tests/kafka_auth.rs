//! SASL against Tansu with authentication on: the gateway produces with SCRAM credentials from
//! `kafka.properties`, an authenticated consumer reads the events back, and a wrong password
//! stops the gateway with the broker's reason instead of looking like an outage.
//!
//! PLAIN is not tested: Tansu 0.6.0 builds its SASL server (rsasl) without the PLAIN mechanism,
//! so it fails every PLAIN handshake.

use std::collections::BTreeMap;
use std::time::Duration;

use clickstream_platform::kafka::{require_topics, KafkaConfig, TopicCheckError};
use clickstream_tests::kafka::{create_topics_as, read_exactly_as};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, SOURCE_NAME, WRITE_KEY};
use serde_json::{json, Value};

const USER: &str = "clickstream";
const PASSWORD: &str = "correct horse battery staple";
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Far longer than a refused login takes (milliseconds) plus the 3 s topic check; only a hang
/// gets near it.
const HANG: Duration = Duration::from_secs(30);

fn sasl(bootstrap: &str, mechanism: &str, password: &str) -> KafkaConfig {
    let properties: BTreeMap<String, String> = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", mechanism),
        ("sasl.username", USER),
        ("sasl.password", password),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    KafkaConfig { bootstrap_servers: bootstrap.into(), properties, ..KafkaConfig::default() }
}

/// A broker that requires SCRAM, with the raw and DLQ topics created over an authenticated
/// admin connection.
async fn authenticated_broker() -> (Tansu, String, String) {
    let tansu = Tansu::start_with_scram_users(&[(USER, PASSWORD)]);
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics_as(&sasl(&tansu.bootstrap(), "SCRAM-SHA-256", PASSWORD), &[(&raw, 2), (&dlq, 1)]).await;
    (tansu, raw, dlq)
}

async fn post_batch(url: &str, events: &[Value]) -> u16 {
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&json!({"batch": events}))
        .send()
        .await
        .expect("request");
    response.status().as_u16()
}

/// Produces three events through a gateway logged in with `mechanism`, then reads them back
/// with a SCRAM-SHA-256 consumer and compares them field by field.
async fn gateway_round_trip(mechanism: &str) {
    let (tansu, raw, dlq) = authenticated_broker().await;
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.kafka = sasl(&tansu.bootstrap(), mechanism, PASSWORD);
    // Kafka must confirm each event before the 200: a spooled event would pass without any login.
    config.spool.enabled = false;
    let gateway = clickstream_gateway::start(config).await.expect("the gateway starts with SASL credentials");
    let url = format!("http://{}", gateway.addr);
    let events: Vec<Value> = (0..3)
        .map(|i| {
            json!({"type": "track", "event": "Order Completed", "anonymousId": format!("anon-{i}"),
                   "messageId": format!("{mechanism}-{i}"), "properties": {"order": i, "mechanism": mechanism}})
        })
        .collect();
    assert_eq!(post_batch(&url, &events).await, 200);

    let reader = sasl(&tansu.bootstrap(), "SCRAM-SHA-256", PASSWORD);
    let mut messages = read_exactly_as(&reader, &raw, events.len(), READ_TIMEOUT).await;
    messages.sort_by_key(|m| m.value["messageId"].as_str().unwrap_or_default().to_owned());
    for (i, message) in messages.iter().enumerate() {
        assert_eq!(message.key.as_deref(), Some(format!("anon-{i}").as_str()));
        assert_eq!(message.header("source"), Some(SOURCE_NAME));
        assert_eq!(message.value["event"], "Order Completed");
        assert_eq!(message.value["messageId"], format!("{mechanism}-{i}"));
        assert_eq!(message.value["properties"], json!({"order": i, "mechanism": mechanism}));
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_512_gateway_events_read_back_with_scram_sha_256() {
    gateway_round_trip("SCRAM-SHA-512").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_refuses_clients_without_a_login() {
    let (tansu, raw, _) = authenticated_broker().await;
    let anonymous = KafkaConfig { bootstrap_servers: tansu.bootstrap(), ..KafkaConfig::default() };
    let checked = tokio::task::spawn_blocking(move || require_topics(&anonymous, &[&raw], Duration::from_secs(2)))
        .await
        .expect("join");
    assert!(
        matches!(checked, Err(TopicCheckError::Unreachable { .. })),
        "a client without credentials must not see the topics: {checked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_scram_password_stops_the_gateway_with_the_reason() {
    let (tansu, raw, dlq) = authenticated_broker().await;
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.kafka = sasl(&tansu.bootstrap(), "SCRAM-SHA-512", "not the password");
    // With the spool on, an unreachable Kafka does not stop a start; refused credentials must.
    assert!(config.spool.enabled);
    let started = tokio::time::timeout(HANG, clickstream_gateway::start(config))
        .await
        .expect("a refused login must end the start, not hang it");
    let error = match started {
        Ok(gateway) => {
            gateway.shutdown().await;
            panic!("the gateway started with a wrong password")
        }
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("rejected the SASL credentials"), "{error}");
    assert!(error.contains("SASL authentication error"), "librdkafka's reason is kept: {error}");
}

/// A gateway that started during an outage learns of refused credentials only once the broker
/// is back: readiness names the login failure, not an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_refused_credentials() {
    let (mut tansu, raw, dlq) = authenticated_broker().await;
    tansu.stop();
    let mut config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    config.kafka = sasl(&tansu.bootstrap(), "SCRAM-SHA-256", "revoked");
    let gateway = clickstream_gateway::start(config).await.expect("starts on the spool while Kafka is down");
    let readyz = format!("http://{}/readyz", gateway.admin_addr.expect("the test config opens the admin listener"));
    tansu.restart();

    let deadline = tokio::time::Instant::now() + HANG;
    let body = loop {
        let body: Value = reqwest::get(&readyz).await.expect("readyz").json().await.expect("json");
        let reason = body["reason"].as_str().unwrap_or_default();
        if reason.contains("rejected the SASL credentials") {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "readiness never named the refused login: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["status"], "degraded", "the spool still takes events: {body}");
    gateway.shutdown().await;
}
