//! The overload scenario: a sustainable rate R (given, or searched under the SLO), 0.7×R for a
//! baseline stretch, 2×R, then 0.7×R again. It reports how long p99 and throughput take to
//! come back to their baseline values once the overload ends, how many requests were shed
//! (503) and how many events went through the gateway's spool, and, end to end, whether every
//! acknowledged event reached Kafka.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clock::Clock;
use crate::runner::PhaseResult;
use crate::stats::TimelinePoint;

/// A second counts as recovered when its p99 is at most this times the baseline's...
const P99_TOLERANCE: f64 = 1.5;
/// ...or this many milliseconds above it, whichever is more (sub-millisecond p99s jitter).
const P99_SLACK_MS: f64 = 2.0;
/// ...and its acknowledged requests are within this share of the baseline's.
const THROUGHPUT_TOLERANCE: f64 = 0.1;
/// Recovery holds for this many seconds in a row (or to the end of the run).
const HOLD_SECONDS: usize = 3;
/// The gateway's gauge of events waiting in its spool, as its `/metrics` names it.
pub const SPOOL_GAUGE: &str = "clickstream_spool_events";
/// How often [`SpoolWatch::wait_empty`] says what is still waiting.
const SPOOL_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The shape of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct OverloadOptions {
    /// R in requests per second; searched when `None`.
    pub rate: Option<f64>,
    pub baseline: Duration,
    pub overload: Duration,
    pub recovery: Duration,
    /// Connections the load generator may grow to during the scenario, opening them while
    /// requests wait for a free one (see `Pool::grow_up_to`); at most the run's `connections`
    /// keeps the pool fixed.
    pub max_connections: usize,
}

/// Default of `max_connections`: below the gateway's `http.max_connections` (10,000), so its
/// own shedding answers the excess rather than its listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8_192;

/// Share of R offered before and after the overload, and during it.
pub const CALM_SHARE: f64 = 0.7;
pub const OVERLOAD_SHARE: f64 = 2.0;

/// What the scenario found.
#[derive(Debug, Clone, Serialize)]
pub struct OverloadResult {
    /// R, in requests per second.
    pub sustainable_rps: f64,
    /// `given` (--rate) or `searched` (the max rate at the SLO).
    pub rate_source: String,
    pub phase_names: Vec<String>,
    /// When the overload began and ended, in seconds on the report's clock.
    pub overload_start_s: f64,
    pub overload_end_s: f64,
    pub baseline_p99_ms: f64,
    pub baseline_ok_rps: f64,
    /// Seconds from the end of the overload to the end of the first second from which p99
    /// stayed near the baseline; `None` when it never did within the recovery stretch.
    pub p99_recovered_after_s: Option<f64>,
    pub throughput_recovered_after_s: Option<f64>,
    pub scheduled_requests: u64,
    /// Answered 503 (shed at the in-flight cap, or the spool full).
    pub shed_requests: u64,
    pub shed_share: f64,
    /// Never sent: the load generator's own queue was full.
    pub dropped_requests: u64,
    /// The load generator's connections when the scenario began and when it ended.
    pub connections: (usize, usize),
    pub acknowledged_events: u64,
    pub spool: Option<SpoolSeen>,
}

/// What the spool gauge showed while the scenario ran.
#[derive(Debug, Clone, Serialize)]
pub struct SpoolSeen {
    /// The most events waiting at once.
    pub peak_events: f64,
    /// The sum of the gauge's rises between samples: events that went through the spool, a
    /// lower bound since the replayer drains it between samples too.
    pub spooled_at_least: f64,
    /// `spooled_at_least` over the acknowledged events.
    pub share_of_acknowledged: f64,
    pub samples: Vec<(f64, f64)>,
}

impl OverloadResult {
    pub fn from_run(
        sustainable_rps: f64,
        rate_source: &str,
        phases: &[PhaseResult],
        timeline: &[TimelinePoint],
        spool: Option<Vec<(f64, f64)>>,
        connections: (usize, usize),
    ) -> anyhow::Result<Self> {
        let [baseline, overload, recovery] = phases else {
            anyhow::bail!("the overload scenario has three phases, got {}", phases.len())
        };
        let overload_end_s = recovery.started_s;
        let recovery_end_s = recovery.started_s + recovery.duration_s;
        let p99_limit = (baseline.latency.p99_ms * P99_TOLERANCE).max(baseline.latency.p99_ms + P99_SLACK_MS);
        let ok_band = baseline.achieved_rps * THROUGHPUT_TOLERANCE;
        let after =
            |good: &dyn Fn(&TimelinePoint) -> bool| recovered_after(timeline, overload_end_s, recovery_end_s, good);
        let p99_recovered_after_s = after(&|t| t.latency.count > 0 && t.latency.p99_ms <= p99_limit);
        let throughput_recovered_after_s = after(&|t| (t.ok_rps as f64 - baseline.achieved_rps).abs() <= ok_band);
        let scheduled_requests: u64 = phases.iter().map(|p| p.scheduled).sum();
        let shed_requests: u64 = phases.iter().map(|p| p.statuses.get("503").copied().unwrap_or(0)).sum();
        let acknowledged_events: u64 = phases.iter().map(|p| p.ok_events).sum();
        let spool = spool.filter(|s| !s.is_empty()).map(|samples| SpoolSeen::of(samples, acknowledged_events));
        Ok(Self {
            sustainable_rps,
            rate_source: rate_source.to_owned(),
            phase_names: vec![
                format!("baseline {CALM_SHARE}×R"),
                format!("overload {OVERLOAD_SHARE}×R"),
                format!("recovery {CALM_SHARE}×R"),
            ],
            overload_start_s: overload.started_s,
            overload_end_s,
            baseline_p99_ms: baseline.latency.p99_ms,
            baseline_ok_rps: baseline.achieved_rps,
            p99_recovered_after_s,
            throughput_recovered_after_s,
            scheduled_requests,
            shed_requests,
            shed_share: if scheduled_requests > 0 { shed_requests as f64 / scheduled_requests as f64 } else { 0.0 },
            dropped_requests: phases.iter().map(|p| p.dropped + p.abandoned).sum(),
            connections,
            acknowledged_events,
            spool,
        })
    }

    pub fn describe(&self) -> Vec<String> {
        let recovered =
            |s: Option<f64>| s.map_or("did not recover in the recovery stretch".to_owned(), |s| format!("{s:.1} s"));
        let mut lines = vec![
            format!(
                "R = {:.0} req/s ({}); {} / {} / {}",
                self.sustainable_rps, self.rate_source, self.phase_names[0], self.phase_names[1], self.phase_names[2]
            ),
            format!("baseline: p99 {:.2} ms at {:.0} ok req/s", self.baseline_p99_ms, self.baseline_ok_rps),
            format!(
                "after the overload: p99 back after {}, throughput back after {}",
                recovered(self.p99_recovered_after_s),
                recovered(self.throughput_recovered_after_s)
            ),
            format!(
                "shed (503): {} of {} requests ({:.2}%); dropped by the load generator: {}",
                self.shed_requests,
                self.scheduled_requests,
                self.shed_share * 100.0,
                self.dropped_requests
            ),
            format!(
                "load generator connections: {} at the start, {} at the end (opened while requests waited for one)",
                self.connections.0, self.connections.1
            ),
        ];
        lines.push(match &self.spool {
            Some(s) => format!(
                "spooled: at least {:.0} events ({:.2}% of {} acknowledged), at most {:.0} waiting at once",
                s.spooled_at_least,
                s.share_of_acknowledged * 100.0,
                self.acknowledged_events,
                s.peak_events
            ),
            None => format!("spooled: not reported (the target's /metrics has no {SPOOL_GAUGE})"),
        });
        lines
    }
}

impl SpoolSeen {
    fn of(samples: Vec<(f64, f64)>, acknowledged: u64) -> Self {
        let rises: f64 = samples.windows(2).map(|w| (w[1].1 - w[0].1).max(0.0)).sum();
        let first = samples.first().map_or(0.0, |s| s.1);
        let spooled_at_least = rises + first;
        Self {
            peak_events: samples.iter().map(|s| s.1).fold(0.0, f64::max),
            spooled_at_least,
            share_of_acknowledged: if acknowledged > 0 { spooled_at_least / acknowledged as f64 } else { 0.0 },
            samples,
        }
    }
}

/// Seconds from `from_s` to the end of the first whole second after it that is `good` and
/// stays so for `HOLD_SECONDS` (or until `until_s`).
fn recovered_after(
    timeline: &[TimelinePoint],
    from_s: f64,
    until_s: f64,
    good: &dyn Fn(&TimelinePoint) -> bool,
) -> Option<f64> {
    let seconds: Vec<&TimelinePoint> =
        timeline.iter().filter(|t| t.second as f64 >= from_s.floor() && (t.second + 1) as f64 <= until_s).collect();
    (0..seconds.len()).find_map(|i| {
        let hold = &seconds[i..(i + HOLD_SECONDS).min(seconds.len())];
        hold.iter().all(|t| good(t)).then(|| (seconds[i].second + 1) as f64 - from_s)
    })
}

/// Reads the spool gauge from `addr`'s `/metrics` every `every` until stopped; samples are
/// (seconds on `clock`, events waiting).
#[derive(Debug)]
pub struct SpoolWatch {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SpoolWatch {
    pub fn start(addr: SocketAddr, clock: Clock, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop_flag, into) = (stop.clone(), samples.clone());
        let task = tokio::spawn(async move {
            while !stop_flag.load(Ordering::Relaxed) {
                if let Some(value) = scrape(addr).await {
                    let at = clock.seconds(std::time::Instant::now());
                    if let Ok(mut samples) = into.lock() {
                        samples.push((at, value));
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
        Self { addr, stop, samples, task }
    }

    /// Waits until the spool is empty or `limit` has passed, and says how many events still
    /// wait (0 once it emptied, or when the target has no spool gauge). An event acknowledged
    /// from the spool reaches Kafka only when it is replayed, so a read-back that stops before
    /// then counts it as lost.
    pub async fn wait_empty(&self, limit: Duration) -> f64 {
        let started = std::time::Instant::now();
        let mut said = started;
        loop {
            let waiting = scrape(self.addr).await.unwrap_or(0.0).max(0.0);
            if waiting == 0.0 || started.elapsed() >= limit {
                return waiting;
            }
            if said.elapsed() >= SPOOL_PROGRESS_EVERY {
                eprintln!("waiting for the gateway's spool to replay: {waiting:.0} events");
                said = std::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops sampling; `None` when the target never reported the gauge.
    pub async fn finish(self) -> Option<Vec<(f64, f64)>> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let samples = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
        (!samples.is_empty()).then_some(samples)
    }
}

async fn scrape(addr: SocketAddr) -> Option<f64> {
    let (status, body) = crate::target::get(addr, "/metrics").await?;
    (status == 200).then(|| spool_gauge(&String::from_utf8_lossy(&body))).flatten()
}

/// The gauge's value in a Prometheus text page, summed over its label sets.
pub fn spool_gauge(page: &str) -> Option<f64> {
    let values: Vec<f64> = page
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(SPOOL_GAUGE))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;

    fn second(at: u64, ok: u64, p99: f64) -> TimelinePoint {
        let latency = Percentiles { count: ok.max(1), p99_ms: p99, ..Percentiles::default() };
        TimelinePoint { second: at, offered_rps: ok, ok_rps: ok, ok_events_per_sec: ok, errors: 0, latency }
    }

    #[test]
    fn recovery_waits_for_seconds_that_stay_good() {
        // Overload ends at 10.0; second 11 looks good once, then 12 is bad, and from 13 on it holds.
        let timeline: Vec<_> = (10..20).map(|s| second(s, 100, if s == 10 || s == 12 { 80.0 } else { 3.0 })).collect();
        let good = |t: &TimelinePoint| t.latency.p99_ms <= 5.0;
        assert_eq!(recovered_after(&timeline, 10.0, 20.0, &good), Some(4.0));
        assert_eq!(recovered_after(&timeline, 10.0, 20.0, &|_| false), None);
    }

    /// A `/metrics` server whose spool gauge reads `waiting` minus the scrapes so far, down to 0.
    async fn draining_spool(waiting: u64) -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = scrapes.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let seen = counted.fetch_add(1, Ordering::SeqCst);
                let body = format!("{SPOOL_GAUGE}{{otel_scope_name=\"x\"}} {}\n", waiting.saturating_sub(seen));
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
            }
        });
        (addr, scrapes)
    }

    #[tokio::test]
    async fn the_read_back_waits_for_the_spool_to_replay() {
        let (addr, scrapes) = draining_spool(3).await;
        let watch = SpoolWatch::start(addr, Clock::start(), Duration::from_millis(50));
        assert_eq!(watch.wait_empty(Duration::from_secs(30)).await, 0.0);
        assert!(scrapes.load(Ordering::SeqCst) >= 4, "it read the gauge until it showed 0");
        let (addr, _) = draining_spool(1_000).await;
        let stuck = SpoolWatch::start(addr, Clock::start(), Duration::from_millis(50));
        let left = stuck.wait_empty(Duration::from_millis(600)).await;
        assert!(left > 900.0, "past the limit it says what still waits: {left}");
        assert!(watch.finish().await.is_some() && stuck.finish().await.is_some());
    }

    #[test]
    fn the_spool_gauge_is_read_from_prometheus_text() {
        let page = "# HELP clickstream_spool_events Events waiting in the spool.\n# TYPE clickstream_spool_events gauge\nclickstream_spool_events{otel_scope_name=\"x\"} 42\nclickstream_spool_events_other 7\n";
        assert_eq!(spool_gauge(page), Some(42.0));
        assert_eq!(spool_gauge("up 1\n"), None);
        let seen = SpoolSeen::of(vec![(0.0, 0.0), (1.0, 50.0), (2.0, 20.0), (3.0, 70.0)], 1000);
        assert_eq!((seen.spooled_at_least, seen.peak_events), (100.0, 70.0));
    }
}
