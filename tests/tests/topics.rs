//! Topic provisioning against Tansu: idempotent creation and drift reports, never destruction.

use std::time::Duration;

use clickstream_platform::kafka::{apply_topics, topic_partitions, KafkaConfig, TopicOutcome, TopicSpec};
use clickstream_platform::topics::{apply, TopicsFile};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_missing_topics_once_and_reports_partition_drift() {
    let tansu = Tansu::start();
    let config = KafkaConfig { bootstrap_servers: tansu.bootstrap(), ..KafkaConfig::default() };
    let (fresh, narrow) = (unique("fresh"), unique("narrow"));
    create_topics(&tansu.bootstrap(), &[(&narrow, 1)]).await;
    let spec = |name: &str, partitions| TopicSpec {
        name: name.into(),
        partitions,
        replication: 1,
        cleanup_policy: "delete".into(),
    };
    let specs = [spec(&fresh, 3), spec(&narrow, 4)];
    let timeout = Duration::from_secs(10);

    let mut first = apply_topics(&config, &specs, timeout).await.expect("apply");
    first.sort();
    let mut expected = vec![
        (fresh.clone(), TopicOutcome::Created),
        (narrow.clone(), TopicOutcome::FewerPartitions { actual: 1, wanted: 4 }),
    ];
    expected.sort();
    assert_eq!(first, expected);

    let second = apply_topics(&config, &specs[..1], timeout).await.expect("apply again");
    assert_eq!(second, vec![(fresh.clone(), TopicOutcome::Exists)]);

    let client = config.metadata_client().expect("client");
    let found = tokio::task::spawn_blocking(move || topic_partitions(&client, &[&fresh, &narrow], timeout))
        .await
        .expect("join")
        .expect("metadata");
    let counts: Vec<Option<usize>> = {
        let mut v: Vec<_> = found.into_iter().collect();
        v.sort();
        v.into_iter().map(|(_, c)| c).collect()
    };
    assert_eq!(counts, vec![Some(3), Some(1)], "created with 3 partitions; the narrow topic left untouched");
}

fn partitions(config: &KafkaConfig, names: &[&str]) -> Vec<Option<usize>> {
    let client = config.metadata_client().expect("client");
    let found = topic_partitions(&client, names, Duration::from_secs(10)).expect("metadata");
    names.iter().map(|n| found[*n]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_file_apply_is_idempotent_and_reports_partition_and_config_drift() {
    let tansu = Tansu::start();
    let config = KafkaConfig { bootstrap_servers: tansu.bootstrap(), ..KafkaConfig::default() };
    let (catalog, narrow) = (unique("products"), unique("narrow"));
    create_topics(&tansu.bootstrap(), &[(&narrow, 1)]).await;
    let file = |retention: i64| {
        TopicsFile::parse(&format!(
            "[[topic]]\nname = \"{catalog}\"\npartitions = 2\ncleanup_policy = \"compact\"\nretention_ms = {retention}\n\
             [[topic]]\nname = \"{narrow}\"\npartitions = 4\n"
        ))
        .expect("topics file")
    };
    let timeout = Duration::from_secs(10);
    let sorted = |mut v: Vec<(String, TopicOutcome)>| {
        v.sort();
        v
    };

    let first = sorted(apply(&config, &file(-1).topics, timeout).await.expect("first apply"));
    let drift = (narrow.clone(), TopicOutcome::FewerPartitions { actual: 1, wanted: 4 });
    assert_eq!(first, sorted(vec![(catalog.clone(), TopicOutcome::Created), drift.clone()]));

    // Idempotent: nothing is created twice, the drift is reported again and left alone.
    let second = sorted(apply(&config, &file(-1).topics, timeout).await.expect("second apply"));
    assert_eq!(second, sorted(vec![(catalog.clone(), TopicOutcome::Exists), drift.clone()]));
    assert_eq!(partitions(&config, &[&catalog, &narrow]), vec![Some(2), Some(1)]);

    // Tansu 0.6 describes the configs a topic was created with, so config drift shows.
    let third = sorted(apply(&config, &file(86_400_000).topics, timeout).await.expect("third apply"));
    let changed =
        TopicOutcome::ConfigDrift { key: "retention.ms".into(), actual: "-1".into(), wanted: "86400000".into() };
    assert_eq!(third, sorted(vec![(catalog.clone(), changed), drift]));
    assert!(third.iter().all(|(_, outcome)| outcome.is_drift()));
}
