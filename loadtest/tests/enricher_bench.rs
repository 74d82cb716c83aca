//! The enricher benchmark's mechanics against a real broker: both contenders process every
//! input event and their outputs are acknowledged. Nothing here asserts a speed.

use std::time::Duration;

use clickstream_enricher::EnricherConfig;
use clickstream_loadtest::enricher_bench::{run, Contender, EnricherBenchOptions};
use clickstream_tests::tansu::Tansu;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_contenders_process_every_event() {
    let tansu = Tansu::start_in_memory();
    let mut config = EnricherConfig::default();
    config.kafka.bootstrap_servers = tansu.bootstrap();
    let events = 3_000;
    let options = EnricherBenchOptions {
        config,
        events,
        partitions: 3,
        rounds: 2,
        visitors: 200,
        seed: 7,
        phase_timeout: Duration::from_secs(180),
    };
    let report = run(&options).await.expect("benchmark runs");

    let order: Vec<(usize, Contender)> = report.phases.iter().map(|p| (p.round, p.contender)).collect();
    assert_eq!(
        order,
        [(1, Contender::Passthrough), (1, Contender::Enricher), (2, Contender::Enricher), (2, Contender::Passthrough)],
        "rounds alternate their order"
    );
    for phase in &report.phases {
        assert_eq!(phase.events, events as u64);
        assert!(phase.seconds > 0.0 && phase.events_per_sec.is_finite(), "{phase:?}");
        match phase.contender {
            // One acknowledged copy per input record.
            Contender::Passthrough => assert_eq!(phase.outputs, events as u64, "{phase:?}"),
            // Every event enriched, plus the product activities sent through the repartition
            // topic (the simulated shop's visitors view and buy products).
            Contender::Enricher => assert!(phase.outputs > events as u64, "{phase:?}"),
        }
    }
    assert_eq!(report.guarantee, "exactly_once_idempotent");
    assert!(report.ratio > 0.0, "{report:?}");
}
