//! `find_max` converges on the capacity of a server that can serve only 250 requests per
//! second: each request holds a single server slot for 4 ms, and the rest queue. The slot is
//! long and the SLO loose next to the few milliseconds a busy machine delays a thread, so only
//! queueing decides the verdicts (with a 1 ms slot and a 20 ms SLO, a build beside the test
//! failed a probe at 75% of capacity).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt as _, Full};
use tokio::net::TcpListener;

use clickstream_loadtest::{
    find_max, Catalog, Mode, Pool, Progress, Protocol, RunOptions, SearchOptions, Session, Slo, Target, TargetKind,
    TargetSpec,
};

const CAPACITY_RPS: f64 = 250.0;
const SERVICE: Duration = Duration::from_millis(4);

async fn start_limited_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let next_free = Arc::new(Mutex::new(Instant::now()));
    let handler = move |request: http::Request<hyper::body::Incoming>, _peer| {
        let next_free = next_free.clone();
        async move {
            let _ = request.into_body().collect().await;
            let done_at = {
                let mut slot = next_free.lock().expect("lock");
                *slot = (*slot).max(Instant::now()) + SERVICE;
                *slot
            };
            tokio::time::sleep_until(done_at.into()).await;
            Response::new(Full::new(Bytes::from_static(b"{\"success\":true}")))
        }
    };
    tokio::spawn(clickstream_gateway::server::serve(listener, handler, std::future::pending(), Duration::ZERO));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_max_converges_on_the_server_capacity() {
    let url = start_limited_server().await;
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
        connections: 16,
        request_timeout: Duration::from_secs(5),
        late_threshold: Duration::from_millis(1),
        max_backlog: Duration::from_secs(5),
        visitors: 100,
        seed: 2,
        catalog: Arc::new(Catalog::builtin()),
        write_key: "wk".into(),
    };
    let search = SearchOptions {
        slo: Slo { p99_ms: 100.0, max_error_rate: 0.001 },
        start_rate: 75.0,
        max_rate: 100_000.0,
        growth: 2.0,
        probe: Duration::from_millis(1_600),
        cooldown: Duration::from_millis(300),
        precision: 0.1,
        max_probes: 10,
        retry_failures: false,
    };
    let session = Session::new(Progress::HIDDEN);
    let pool = Pool::open(&target, &options, &session).await;
    let found = find_max(&pool, &search, &session, "limited").await.expect("search runs");
    let max = found.max_rps.expect("low rates pass");
    let rates: Vec<(f64, bool)> = found.probes.iter().map(|p| (p.rate_rps, p.verdict.passed)).collect();
    assert!(
        (0.75 * CAPACITY_RPS..=1.1 * CAPACITY_RPS).contains(&max),
        "found {max:.0} req/s for a {CAPACITY_RPS} req/s server; probes {rates:?}"
    );
    let first_failing = found.first_failing_rps.expect("overload fails");
    assert!(first_failing > max && first_failing <= 1.5 * CAPACITY_RPS, "probes {rates:?}");
    assert!(found.stopped_because.contains("bracketed"), "{}", found.stopped_because);
    // The overloaded probes failed on latency, as queueing theory says they must.
    let overloaded = found.probes.iter().find(|p| p.rate_rps >= 1.2 * CAPACITY_RPS).expect("an overloaded probe");
    assert!(!overloaded.verdict.passed && overloaded.verdict.reason.contains("p99"), "{:?}", overloaded.verdict);
}
