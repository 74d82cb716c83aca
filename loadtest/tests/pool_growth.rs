//! A pool let grow opens connections while requests wait for one, so a slow server sees every
//! request itself; a fixed pool holds the excess in the load generator's queue, where the
//! server cannot see it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt as _, Full};
use tokio::net::TcpListener;

use clickstream_loadtest::{
    run_on, Catalog, Mode, Phase, Pool, Progress, Protocol, RunOptions, Session, Target, TargetKind, TargetSpec,
};

const ANSWER_AFTER: Duration = Duration::from_millis(100);
const FIXED: usize = 2;
const GROW_TO: usize = 40;

/// Answers every request after `ANSWER_AFTER`, and notes each client port it hears from.
async fn start_slow_server() -> (String, Arc<Mutex<HashSet<SocketAddr>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let peers = Arc::new(Mutex::new(HashSet::new()));
    let seen = peers.clone();
    let handler = move |request: http::Request<hyper::body::Incoming>, peer: SocketAddr| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("lock").insert(peer);
            let _ = request.into_body().collect().await;
            tokio::time::sleep(ANSWER_AFTER).await;
            Response::new(Full::new(Bytes::from_static(b"{\"success\":true}")))
        }
    };
    tokio::spawn(clickstream_gateway::server::serve(listener, handler, std::future::pending(), Duration::ZERO));
    (format!("http://{addr}"), peers)
}

fn options() -> RunOptions {
    RunOptions {
        mode: Mode::Single,
        protocol: Protocol::Segment,
        connections: FIXED,
        request_timeout: Duration::from_secs(10),
        late_threshold: Duration::from_millis(50),
        max_backlog: Duration::from_secs(10),
        visitors: 100,
        seed: 3,
        catalog: Arc::new(Catalog::builtin()),
        write_key: "wk".into(),
    }
}

/// 100 req/s for 2 s against a server that answers after 100 ms: about 10 requests are in
/// flight at once, five times what two connections carry.
async fn slow_run(grow: bool) -> (clickstream_loadtest::PhaseResult, usize, usize) {
    let (url, peers) = start_slow_server().await;
    let spec = TargetSpec {
        kind: TargetKind::HyperBaseline,
        url: Some(url),
        gateway: Default::default(),
        cpus: None,
        binary: None,
    };
    let target = Target::start(&spec).await.expect("server answers");
    let session = Session::new(Progress::HIDDEN);
    let pool = Pool::open(&target, &options(), &session).await;
    assert_eq!(pool.connection_count(), FIXED);
    if grow {
        pool.grow_up_to(GROW_TO);
    }
    let outcome =
        run_on(&pool, &[Phase::fixed(100.0, Duration::from_secs(2))], &session, None, "slow").await.expect("run");
    let heard_from = peers.lock().expect("lock").len();
    (outcome.phases[0].clone(), pool.connection_count(), heard_from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_pool_connects_instead_of_queueing() {
    let (phase, connections, heard_from) = slow_run(true).await;
    assert_eq!((phase.scheduled, phase.ok_requests, phase.dropped), (200, 200, 0), "{phase:#?}");
    assert!(connections > FIXED && connections <= GROW_TO, "the pool grew within its cap: {connections}");
    // A connection opened on the last look may find no job left, so the server hears from
    // most of them, and from more clients than the fixed pool (and the target's probe) has.
    assert!(heard_from > FIXED + 1, "the server heard from {heard_from} clients of {connections}");
    // With enough connections, requests waited for the server, not for a connection: a few
    // wait for the next look at the queue, most go out at once.
    assert!(phase.late < 40, "{} of 200 requests waited for a connection", phase.late);
    assert!(phase.latency.p50_ms < 400.0, "the median request waited {} ms", phase.latency.p50_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_pool_holds_the_excess_in_its_queue() {
    let (phase, connections, heard_from) = slow_run(false).await;
    assert_eq!((phase.scheduled, phase.ok_requests, phase.dropped), (200, 200, 0), "{phase:#?}");
    assert_eq!(connections, FIXED);
    assert!(heard_from <= FIXED + 1, "the server heard from {heard_from} clients");
    // Two connections carry 20 requests a second, so the 200 take about 10 s, and most of
    // them start late, from the generator's queue.
    assert!(phase.late > 150, "only {} of 200 requests waited for a connection", phase.late);
    assert!(phase.latency.p50_ms > 2_000.0, "the median request waited only {} ms", phase.latency.p50_ms);
}
