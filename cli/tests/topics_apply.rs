//! `clickstream topics apply --file deploy/topics.toml` against Tansu: the shipped file
//! creates every pipeline topic, a second run changes nothing, and drift fails the command.

use std::process::{Command, Output};

use clickstream_tests::tansu::Tansu;
use clickstream_tests::PIPELINE_TOPICS;

const DEPLOY_TOPICS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/topics.toml");

fn apply(bootstrap: &str, file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .args(["topics", "apply", "--replication", "1", "--kafka-brokers", bootstrap, "--file", file])
        .env_remove("CLICKSTREAM_CONFIG")
        .output()
        .expect("run clickstream topics apply")
}

fn lines(output: &Output) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn deploy_topics_apply_twice_then_report_drift() {
    let tansu = Tansu::start();
    let names = PIPELINE_TOPICS;
    let first = apply(&tansu.bootstrap(), DEPLOY_TOPICS);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(lines(&first), names.map(|n| format!("created  {n}")).to_vec());

    let second = apply(&tansu.bootstrap(), DEPLOY_TOPICS);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(lines(&second), names.map(|n| format!("exists   {n}")).to_vec());

    let dir = tempfile::tempdir().expect("dir");
    let wider = dir.path().join("topics.toml");
    let text = std::fs::read_to_string(DEPLOY_TOPICS).expect("deploy/topics.toml");
    std::fs::write(&wider, text.replacen("partitions = 12", "partitions = 24", 1)).expect("write");
    let third = apply(&tansu.bootstrap(), &wider.display().to_string());
    assert!(!third.status.success(), "drift must fail the command");
    let out = lines(&third);
    assert!(
        out.contains(&"DRIFT    events.raw: 12 partitions, config wants 24 (left unchanged)".to_owned()),
        "{out:#?}"
    );
    assert_eq!(out.iter().filter(|l| l.starts_with("exists")).count(), names.len() - 1, "{out:#?}");
}
