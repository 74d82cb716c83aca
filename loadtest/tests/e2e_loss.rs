//! End-to-end matching against a real broker: a gateway whose sink drops every seventh record
//! on purpose (and still answers 200) must show exactly those records as lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use clickstream_gateway::sink::{EventSink, KafkaSink, Record, SinkError, SinkHealth};
use clickstream_gateway::{app, AppState};
use clickstream_loadtest::{
    run, Catalog, E2eOptions, Matcher, Mode, Phase, Progress, Protocol, RunOptions, Session, Target, TargetKind,
    TargetSpec,
};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::tansu::Tansu;
use clickstream_tests::{gateway_config, unique, WRITE_KEY};

/// Acknowledges everything but produces only six records in seven.
#[derive(Debug)]
struct DroppingSink {
    inner: KafkaSink,
    seen: AtomicU64,
    dropped: AtomicU64,
}

const DROP_EVERY: u64 = 7;

impl EventSink for DroppingSink {
    fn deliver(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>> {
        let kept = records
            .into_iter()
            .filter(|_| {
                let keep = !(self.seen.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(DROP_EVERY);
                if !keep {
                    self.dropped.fetch_add(1, Ordering::SeqCst);
                }
                keep
            })
            .collect();
        self.inner.deliver(kept)
    }

    fn health(&self) -> SinkHealth {
        self.inner.health()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_counts_dropped_events_as_lost() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    let sink = Arc::new(DroppingSink {
        inner: KafkaSink::new(&config).expect("producer"),
        seen: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let handler = Arc::new(app(AppState::new(config.clone(), sink.clone()).expect("valid routing")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serve_handler = move |request, peer| {
        let handler = handler.clone();
        async move { handler.handle(request, peer).await }
    };
    tokio::spawn(clickstream_gateway::server::serve(listener, serve_handler, std::future::pending(), Duration::ZERO));

    let spec =
        TargetSpec { kind: TargetKind::Gateway, url: Some(url), gateway: config.clone(), cpus: None, binary: None };
    let target = Target::start(&spec).await.expect("gateway ready");
    let session = Session::new(Progress::HIDDEN);
    let enriched = unique("events.enriched");
    let e2e = E2eOptions {
        kafka: config.kafka.clone(),
        raw_topic: raw.clone(),
        enriched_topic: Some(enriched.clone()),
        drain: Duration::from_secs(3),
    };
    let matcher = Matcher::start(&e2e, session.sequence.run, session.clock).await.expect("consumer assigned");
    let options = RunOptions {
        mode: Mode::Batch { events: 10 },
        protocol: Protocol::Segment,
        connections: 4,
        request_timeout: Duration::from_secs(10),
        late_threshold: Duration::from_millis(5),
        max_backlog: Duration::from_secs(5),
        visitors: 200,
        seed: 3,
        catalog: Arc::new(Catalog::builtin()),
        write_key: WRITE_KEY.into(),
    };
    // 50 batches of 10 events per second for 2 s: 1000 events.
    let outcome =
        run(&target, &[Phase::fixed(50.0, Duration::from_secs(2))], &options, &session, Some(matcher.clone()), "loss")
            .await
            .expect("run");
    assert_eq!(outcome.phases[0].ok_requests, 100, "{:#?}", outcome.phases[0]);
    let result = matcher.finish().await;

    let dropped = sink.dropped.load(Ordering::SeqCst);
    assert_eq!(dropped, 1000 / DROP_EVERY);
    assert_eq!((result.sent_events, result.acknowledged_events), (1000, 1000));
    let raw_match = result.topics.iter().find(|t| t.topic == raw).expect("raw topic measured");
    assert!(raw_match.present);
    assert_eq!(raw_match.lost, dropped, "{raw_match:#?}");
    assert_eq!(raw_match.seen, 1000 - dropped);
    assert_eq!((raw_match.duplicates, raw_match.seen_unacknowledged), (0, 0), "{raw_match:#?}");
    assert_eq!(raw_match.latency.count, 1000 - dropped, "one latency per event seen");
    assert!(raw_match.latency.p50_ms > 0.0 && raw_match.latency.max_ms < 10_000.0, "{:?}", raw_match.latency);
    let enriched_match = result.topics.iter().find(|t| t.topic == enriched).expect("enriched listed");
    assert!(!enriched_match.present, "a missing enriched topic is reported, not measured");
}

/// Every protocol the generator speaks, against a real gateway on Tansu: each request is
/// answered 2xx and each of its events is read back from the raw topic by its message id,
/// which every protocol carries in its own event-id field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_protocol_delivers_every_event() {
    let tansu = Tansu::start();
    let (raw, dlq) = (unique("events.raw"), unique("events.dlq"));
    create_topics(&tansu.bootstrap(), &[(&raw, 3), (&dlq, 1)]).await;
    let config = gateway_config(&tansu.bootstrap(), &raw, &dlq);
    let gateway = clickstream_gateway::server::start(config.clone()).await.expect("gateway starts");
    let spec = TargetSpec {
        kind: TargetKind::Gateway,
        url: Some(format!("http://{}", gateway.addr)),
        gateway: config.clone(),
        cpus: None,
        binary: None,
    };
    let target = Target::start(&spec).await.expect("gateway ready");
    let runs = [
        (Protocol::Posthog, Mode::Single),
        (Protocol::Posthog, Mode::Batch { events: 5 }),
        (Protocol::Snowplow, Mode::Batch { events: 5 }),
        (Protocol::Pixel, Mode::Single),
    ];
    for (protocol, mode) in runs {
        let session = Session::new(Progress::HIDDEN);
        let e2e = E2eOptions {
            kafka: config.kafka.clone(),
            raw_topic: raw.clone(),
            enriched_topic: None,
            drain: Duration::from_secs(3),
        };
        let matcher = Matcher::start(&e2e, session.sequence.run, session.clock).await.expect("consumer assigned");
        let options = RunOptions {
            mode,
            protocol,
            connections: 2,
            request_timeout: Duration::from_secs(10),
            late_threshold: Duration::from_millis(5),
            max_backlog: Duration::from_secs(5),
            visitors: 50,
            seed: 9,
            catalog: Arc::new(Catalog::builtin()),
            write_key: WRITE_KEY.into(),
        };
        let label = options.label();
        // 20 requests a second for one second.
        let outcome = run(
            &target,
            &[Phase::fixed(20.0, Duration::from_secs(1))],
            &options,
            &session,
            Some(matcher.clone()),
            &label,
        )
        .await
        .expect("run");
        let phase = &outcome.phases[0];
        assert_eq!((phase.ok_requests, phase.completed), (20, 20), "{label}: {phase:#?}");
        let result = matcher.finish().await;
        let events = 20 * mode.events_per_request() as u64;
        assert_eq!((result.sent_events, result.acknowledged_events), (events, events), "{label}");
        let raw_match = result.topics.iter().find(|t| t.topic == raw).expect("raw topic measured");
        assert_eq!((raw_match.seen, raw_match.lost, raw_match.duplicates), (events, 0, 0), "{label}: {raw_match:#?}");
    }
    gateway.shutdown().await;
}
