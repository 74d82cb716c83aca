//! The real `clickstream` binary: `routing check` on good and bad configs, and a SIGHUP reload
//! of sources and routing rules under an open keep-alive connection.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use clickstream_tests::command::run_with_stdin;
use clickstream_tests::kafka::{create_topics, read_exactly};
use clickstream_tests::tansu::Tansu;
use clickstream_tests::unique;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const PAYMENTS: &str = r#"
[[sources]]
name = "web"
write_key = "demo-write-key"

[[routing.rules]]
name = "payments"
event = ["Order Completed", "Payment *"]
topics = ["events.payments", "events.raw"]
"#;

fn routes_check(config: &Path, extra: &[&str], stdin: &str) -> (Output, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clickstream"));
    command.args(["routing", "check"]).arg(config).args(extra);
    run_with_stdin(&mut command, stdin)
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("clickstream.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

#[test]
fn routes_check_explains_where_each_event_goes() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), PAYMENTS);
    let events = r#"[{"type":"track","event":"Order Completed","userId":"u1"},
                     {"type":"track","event":"Page Viewed","anonymousId":"a1"}]"#;
    let (output, text) = routes_check(&config, &["--offline"], events);
    assert!(output.status.success(), "{text}");
    let expected = [
        "ok: no problems found",
        "event 1: track `Order Completed` from source `web`",
        "  rule `payments` matches: event `Order Completed` matches one of `Order Completed`, `Payment *`\n  route: payments\n  topics: events.payments, events.raw\n  key: `u1`",
        "event 2: track `Page Viewed` from source `web`",
        "  rule `payments` does not match: event `Page Viewed` matches none of `Order Completed`, `Payment *`\n  no rule matches: taking the default route\n  route: default\n  topics: events.raw\n  key: `a1`",
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn routes_check_rejects_bad_patterns_and_shadowed_rules() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(
        dir.path(),
        &format!(
            "[routing]\nallowed_topics = [\"events/*\"]\n{PAYMENTS}\n[[routing.rules]]\nname = \"refunds\"\nevent = \"Payment Refunded\"\ntopics = [\"events.refunds\"]\n\
             [[routing.rules]]\nname = \"per-source\"\ntopics = [\"events.{{client}}\"]\n\
             [routing.overflow]\nper_key_per_sec = 5\n"
        ),
    );
    let (output, text) = routes_check(&config, &["--offline"], "");
    assert!(!output.status.success(), "a bad config must fail:\n{text}");
    let expected = [
        "4 problem(s):",
        "routing: allowed_topics: `events/*` has `/`, which no topic name can hold",
        "routing: overflow needs both `topic` and `per_key_per_sec`",
        "rule `refunds`: can never match: rule `payments` comes first and matches every event this one would",
        "rule `per-source`: topics: `events.{client}` has unknown placeholder `{client}`",
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("Error: the routing config has 4 problem(s)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_check_reports_topics_the_broker_lacks() {
    let tansu = Tansu::start();
    let prefix = unique("check");
    let (raw, payments) = (format!("{prefix}.raw"), format!("{prefix}.payments"));
    create_topics(&tansu.bootstrap(), &[(&raw, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let text = PAYMENTS.replace("events.", &format!("{prefix}."));
    let config = write_config(
        dir.path(),
        &format!("[topics]\nraw = \"{raw}\"\n[kafka]\nbootstrap_servers = \"{}\"\n{text}", tansu.bootstrap()),
    );
    let (output, text) = tokio::task::spawn_blocking(move || routes_check(&config, &[], "")).await.expect("check");
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(&format!("topics: checked against {}", tansu.bootstrap())), "{text}");
    let missing = format!("topic `{payments}` (used by rule(s) payments) does not exist");
    assert!(text.contains(&missing), "missing {missing:?} in:\n{text}");
    assert!(!text.contains(&format!("topic `{raw}`")), "the raw topic exists:\n{text}");
}

/// One HTTP/1.1 request on an open connection; the status and body.
async fn request(stream: &mut TcpStream, key: &str, body: &str) -> (u16, String) {
    let auth = base64_user(key);
    let head = format!(
        "POST /v1/batch HTTP/1.1\r\nhost: x\r\nauthorization: Basic {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(format!("{head}{body}").as_bytes()).await.expect("request written");
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("answer")
            .expect("read");
        assert!(n > 0, "the gateway closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                return (status, body[..length].to_owned());
            }
        }
    }
}

fn base64_user(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
}

/// Connects once the gateway listens; fails with its log if it exits or never listens.
async fn connect(port: u16, gateway: &mut Child, dir: &Path) -> TcpStream {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            return stream;
        }
        let log = || std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default();
        if let Ok(Some(status)) = gateway.try_wait() {
            panic!("the gateway exited ({status}) before listening:\n{}", log());
        }
        assert!(tokio::time::Instant::now() < deadline, "the gateway never listened:\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hangup(child: &Child) {
    let status = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_keys_and_routes_and_refuses_a_bad_config() {
    let tansu = Tansu::start();
    let prefix = unique("hup");
    let (raw, dlq, payments) = (format!("{prefix}.raw"), format!("{prefix}.dlq"), format!("{prefix}.payments"));
    create_topics(&tansu.bootstrap(), &[(&raw, 1), (&dlq, 1), (&payments, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let base = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ndrain_delay_secs = 0\nshutdown_budget_secs = 2\n[admin]\nlisten = \"\"\n[kafka]\nbootstrap_servers = \"{}\"\n\
         [topics]\nraw = \"{raw}\"\ndlq = \"{dlq}\"\n[spool]\ndir = \"{}\"\n",
        tansu.bootstrap(),
        dir.path().join("spool").display()
    );
    let source = |key: &str| format!("[[sources]]\nname = \"web\"\nwrite_key = \"{key}\"\n");
    let rule =
        format!("[[routing.rules]]\nname = \"payments\"\nevent = \"Order *\"\ntopics = [\"{payments}\", \"{raw}\"]\n");
    let config = write_config(dir.path(), &format!("{base}{}", source("key-one")));
    let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["gateway", "--config"])
        .arg(&config)
        .stderr(log)
        .spawn()
        .expect("gateway starts");
    let mut stream = connect(port, &mut gateway, dir.path()).await;
    let order = |n: u32| format!(r#"{{"batch":[{{"type":"track","event":"Order Completed","userId":"u{n}"}}]}}"#);
    assert_eq!(request(&mut stream, "key-one", &order(1)).await.0, 200);

    write_config(dir.path(), &format!("{base}{}{rule}", source("key-two")));
    hangup(&gateway);
    let mut reloaded = false;
    for _ in 0..100 {
        if request(&mut stream, "key-two", &order(2)).await.0 == 200 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "key-two was never accepted on the open connection");
    assert_eq!(request(&mut stream, "key-one", &order(3)).await.0, 401, "the old key is gone");

    write_config(
        dir.path(),
        &format!("{base}[routing]\nallowed_topics = [\"bad topic*\"]\n{}{rule}", source("key-three")),
    );
    hangup(&gateway);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(request(&mut stream, "key-three", &order(4)).await.0, 401, "the bad config was not applied");
    assert_eq!(request(&mut stream, "key-two", &order(5)).await.0, 200, "the running config is kept");

    let routed = read_exactly(&tansu.bootstrap(), &payments, 2, Duration::from_secs(30)).await;
    let users: Vec<&str> = routed.iter().filter_map(|m| m.value["userId"].as_str()).collect();
    assert_eq!(users, ["u2", "u5"], "routes apply from the reload on");
    read_exactly(&tansu.bootstrap(), &raw, 3, Duration::from_secs(30)).await;
    let _ = gateway.kill();
    let _ = gateway.wait();
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    assert!(log.contains("reloaded sources, routing rules and tracking plans"), "{log}");
    assert!(log.contains("config reload refused, keeping the running config"), "{log}");
    assert!(log.contains("allowed_topics: `bad topic*` has ` `"), "refused for its bad pattern: {log}");
}

/// Writes `text` beside `path` and renames it over, as the kubelet swaps a Secret's files.
fn replace_file(path: &Path, text: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).expect("staged file written");
    std::fs::rename(&staged, path).expect("renamed over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_file_and_env_references_come_from_the_environment_and_reload_on_change() {
    let tansu = Tansu::start();
    let prefix = unique("secret");
    let (raw, dlq) = (format!("{prefix}.raw"), format!("{prefix}.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 1), (&dlq, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    // No [[sources]] and no topic names in the file: the Secret and the environment bring them.
    let config = write_config(
        dir.path(),
        &format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\ndrain_delay_secs = 0\nshutdown_budget_secs = 2\n\
             [admin]\nlisten = \"\"\n[kafka]\nbootstrap_servers = \"{}\"\n[topics]\nraw = \"${{TEST_RAW_TOPIC}}\"\ndlq = \"${{TEST_DLQ_TOPIC}}\"\n\
             [spool]\ndir = \"{}\"\n",
            tansu.bootstrap(),
            dir.path().join("spool").display()
        ),
    );
    let secret = dir.path().join("sources.toml");
    let source = |key: &str| format!("[[sources]]\nname = \"web\"\nwrite_key = \"{key}\"\n");
    std::fs::write(&secret, source("secret-one")).expect("secret written");
    let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["gateway", "--config"])
        .arg(&config)
        .env("TEST_RAW_TOPIC", &raw)
        .env("TEST_DLQ_TOPIC", &dlq)
        .env("CLICKSTREAM_SOURCES_FILE", &secret)
        .env("CLICKSTREAM_SOURCES_RELOAD_SECS", "1")
        .stderr(log)
        .spawn()
        .expect("gateway starts");
    let mut stream = connect(port, &mut gateway, dir.path()).await;
    let order = |n: u32| format!(r#"{{"batch":[{{"type":"track","event":"Order Completed","userId":"u{n}"}}]}}"#);
    assert_eq!(request(&mut stream, "secret-one", &order(1)).await.0, 200, "the key from sources_file works");

    // A rotated Secret, with no signal: the gateway notices the new contents by itself.
    replace_file(&secret, &source("secret-two"));
    let mut reloaded = false;
    for _ in 0..100 {
        if request(&mut stream, "secret-two", &order(2)).await.0 == 200 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "secret-two was never accepted without a restart");
    assert_eq!(request(&mut stream, "secret-one", &order(3)).await.0, 401, "the rotated-out key is gone");

    replace_file(&secret, "[[sources]]\nname = \"web\"\nwrite_key = 42\n");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(request(&mut stream, "secret-two", &order(4)).await.0, 200, "a broken file keeps the running keys");

    let events = read_exactly(&tansu.bootstrap(), &raw, 3, Duration::from_secs(30)).await;
    let users: Vec<&str> = events.iter().filter_map(|m| m.value["userId"].as_str()).collect();
    assert_eq!(users, ["u1", "u2", "u4"], "events reach the topic named by ${{TEST_RAW_TOPIC}}");
    let _ = gateway.kill();
    let _ = gateway.wait();
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    assert!(log.contains("sources_file changed: reloading sources"), "{log}");
    assert!(log.contains("sources_file reload refused, keeping the running sources"), "{log}");
}

#[test]
fn an_unset_env_reference_stops_the_gateway_with_its_name() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(
        dir.path(),
        "[kafka.properties]\n\"sasl.password\" = \"${CLICKSTREAM_TEST_UNSET_PASSWORD}\"\n[[sources]]\nname = \"web\"\nwrite_key = \"k\"\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["gateway", "--config"])
        .arg(&config)
        .env_remove("CLICKSTREAM_TEST_UNSET_PASSWORD")
        .output()
        .expect("clickstream runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started without the variable: {stderr}");
    assert!(
        stderr.contains("kafka.properties.sasl.password") && stderr.contains("CLICKSTREAM_TEST_UNSET_PASSWORD"),
        "the error names the key and the variable: {stderr}"
    );
}
