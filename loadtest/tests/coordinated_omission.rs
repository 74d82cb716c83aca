//! A server that stalls for one second once: latency measured from the intended send time
//! must show the stall in p99, where measuring from the actual send would hide it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt as _, Full};
use tokio::net::TcpListener;

use clickstream_loadtest::{
    run, Catalog, Mode, Phase, Progress, Protocol, RunOptions, Session, Target, TargetKind, TargetSpec,
};

const STALL: Duration = Duration::from_secs(1);

/// Answers 200 at once, except that the 100th POST freezes the whole server for `STALL`, as a
/// GC pause or a full disk would.
async fn start_stalling_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let posts = Arc::new(AtomicU64::new(0));
    let frozen_until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let handler = move |request: http::Request<hyper::body::Incoming>, _peer| {
        let (posts, frozen_until) = (posts.clone(), frozen_until.clone());
        async move {
            let is_post = request.method() == http::Method::POST;
            let _ = request.into_body().collect().await;
            if is_post && posts.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
                *frozen_until.lock().expect("lock") = Some(Instant::now() + STALL);
            }
            let until = *frozen_until.lock().expect("lock");
            if let Some(until) = until {
                tokio::time::sleep_until(until.into()).await;
            }
            Response::new(Full::new(Bytes::from_static(b"{\"success\":true}")))
        }
    };
    tokio::spawn(clickstream_gateway::server::serve(listener, handler, std::future::pending(), Duration::ZERO));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p99_reflects_a_one_second_stall() {
    let url = start_stalling_server().await;
    let spec = TargetSpec {
        kind: TargetKind::HyperBaseline,
        url: Some(url),
        gateway: Default::default(),
        cpus: None,
        binary: None,
    };
    let target = Target::start(&spec).await.expect("server answers");
    let options = RunOptions {
        mode: Mode::Single,
        protocol: Protocol::Segment,
        connections: 4,
        request_timeout: Duration::from_secs(5),
        late_threshold: Duration::from_millis(1),
        max_backlog: Duration::from_secs(5),
        visitors: 100,
        seed: 1,
        catalog: Arc::new(Catalog::builtin()),
        write_key: "wk".into(),
    };
    let session = Session::new(Progress::HIDDEN);
    // 200 req/s for 3 s: the stall starts near 0.5 s, and about 200 requests are due during it.
    let outcome = run(&target, &[Phase::fixed(200.0, Duration::from_secs(3))], &options, &session, None, "stall")
        .await
        .expect("run");
    let phase = &outcome.phases[0];
    assert_eq!(phase.scheduled, 600);
    assert_eq!(phase.ok_requests, 600, "every request succeeds eventually: {phase:#?}");
    assert_eq!(phase.dropped, 0);
    // Requests due during the stall waited for it: about a third of them, so p99 is near 1 s.
    assert!(phase.latency.p99_ms >= 800.0, "p99 {} ms hides the 1 s stall", phase.latency.p99_ms);
    assert!(phase.latency.max_ms >= 950.0 && phase.latency.max_ms < 1600.0, "max {} ms", phase.latency.max_ms);
    assert!(phase.latency.p50_ms < 100.0, "the median request is not affected: {} ms", phase.latency.p50_ms);
    // Measured from the actual send, only the few requests in flight saw the stall: a
    // closed-loop tool would report a p99 far below it.
    assert!(phase.service_time.max_ms >= 900.0, "service max {} ms", phase.service_time.max_ms);
    assert!(phase.service_time.p99_ms < 200.0, "service p99 {} ms", phase.service_time.p99_ms);
    assert!(phase.late >= 100, "requests queued behind the stall are counted late: {}", phase.late);
}
