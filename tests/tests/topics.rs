//! Topic provisioning against Tansu: idempotent creation and drift reports, never destruction.

use std::time::Duration;

use clickstream_platform::kafka::{apply_topics, topic_partitions, KafkaConfig, TopicOutcome, TopicSpec};
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
