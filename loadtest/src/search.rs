//! The latency SLO and the search for the highest rate that meets it: step the rate up until
//! a probe fails, then bisect between the last pass and the first failure.

use std::time::Duration;

use serde::Serialize;

use crate::e2e::Matcher;
use crate::plan::Phase;
use crate::pool::Pool;
use crate::runner::{run_on, PhaseResult, Session};

/// What "sustainable" means.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Slo {
    pub p99_ms: f64,
    /// Largest share of requests that may fail (non-2xx, timeouts, dropped sends).
    pub max_error_rate: f64,
}

/// Below this share of the offered rate, a probe did not sustain it even if latency looked fine.
const MIN_ACHIEVED_SHARE: f64 = 0.9;

/// Whether a phase met the SLO, and why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub reason: String,
}

impl Slo {
    pub fn judge(&self, phase: &PhaseResult) -> Verdict {
        let mut failures = Vec::new();
        if phase.latency.p99_ms > self.p99_ms {
            failures.push(format!("p99 {:.2} ms > {} ms", phase.latency.p99_ms, self.p99_ms));
        }
        if phase.error_rate > self.max_error_rate {
            failures.push(format!("error rate {:.4} > {}", phase.error_rate, self.max_error_rate));
        }
        if phase.achieved_rps < phase.offered_rps * MIN_ACHIEVED_SHARE {
            failures.push(format!("achieved {:.0} of {:.0} req/s", phase.achieved_rps, phase.offered_rps));
        }
        match failures.is_empty() {
            true => Verdict { passed: true, reason: format!("p99 {:.2} ms", phase.latency.p99_ms) },
            false => Verdict { passed: false, reason: failures.join("; ") },
        }
    }
}

/// How to search.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    pub slo: Slo,
    /// Rate of the first probe, in requests per second.
    pub start_rate: f64,
    /// The search never offers more than this.
    pub max_rate: f64,
    /// Each step up multiplies the rate by this.
    pub growth: f64,
    /// Length of each probe.
    pub probe: Duration,
    /// Pause between probes, so one probe's backlog does not spill into the next.
    pub cooldown: Duration,
    /// Bisection stops when the bracket is narrower than this share of its low end.
    pub precision: f64,
    pub max_probes: usize,
    /// Repeat a failing probe once; the rate fails only if both fail.
    pub retry_failures: bool,
}

/// One probe of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub rate_rps: f64,
    pub verdict: Verdict,
    pub phase: PhaseResult,
}

/// The result of a search.
#[derive(Debug, Clone, Serialize)]
pub struct FindMax {
    pub slo: Slo,
    /// The highest probed rate that met the SLO, in requests per second.
    pub max_rps: Option<f64>,
    pub max_events_per_sec: Option<f64>,
    /// The lowest probed rate that failed it.
    pub first_failing_rps: Option<f64>,
    /// The measurements at `max_rps`.
    pub at_max: Option<PhaseResult>,
    pub probes: Vec<Probe>,
    /// Why the search stopped where it did.
    pub stopped_because: String,
}

/// A server still busy after a probe (replaying a spool, flushing, compacting) would charge
/// that work to the next probe: wait, up to `SETTLE_LIMIT`, until it idles.
async fn settle(server_pid: Option<u32>) {
    let Some(pid) = server_pid else { return };
    let started = std::time::Instant::now();
    while started.elapsed() < SETTLE_LIMIT {
        let before = crate::cpu::process_cpu_seconds(pid);
        tokio::time::sleep(Duration::from_millis(300)).await;
        match (before, crate::cpu::process_cpu_seconds(pid)) {
            (Some(a), Some(b)) if (b - a) / 0.3 > IDLE_CORES => {}
            _ => return,
        }
    }
    eprintln!("  the server was still busy {SETTLE_LIMIT:?} after the probe; going on");
}

/// Below this many cores of CPU, the server counts as idle.
const IDLE_CORES: f64 = 0.15;
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// Searches the highest rate the pool's target sustains within `search.slo`.
pub async fn find_max(pool: &Pool, search: &SearchOptions, session: &Session, label: &str) -> anyhow::Result<FindMax> {
    let mut probes: Vec<Probe> = Vec::new();
    let probe = |rate: f64, probes_so_far: usize| {
        let label = format!("{label} probe {} @ {rate:.0} req/s", probes_so_far + 1);
        async move {
            let phases = [Phase::fixed(rate, search.probe)];
            let outcome = run_on(pool, &phases, session, None::<std::sync::Arc<Matcher>>, &label).await?;
            tokio::time::sleep(search.cooldown).await;
            settle(pool.server_pid).await;
            let phase = outcome.phases.into_iter().next().ok_or_else(|| anyhow::anyhow!("a probe has one phase"))?;
            let verdict = search.slo.judge(&phase);
            eprintln!(
                "  {rate:>10.0} req/s ({:>10.0} events/s): {} ({})",
                phase.offered_events_per_sec,
                if verdict.passed { "pass" } else { "FAIL" },
                verdict.reason
            );
            anyhow::Ok(Probe { rate_rps: rate, verdict, phase })
        }
    };
    let (mut pass, mut fail): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = search.start_rate.max(1.0);
    let stopped_because = loop {
        if probes.len() >= search.max_probes {
            break "probe budget used up".to_owned();
        }
        let mut result = probe(rate, probes.len()).await?;
        if !result.verdict.passed && search.retry_failures {
            // One noise spike from another process must not end the search: a rate fails
            // only when it fails twice in a row.
            probes.push(result);
            result = probe(rate, probes.len()).await?;
        }
        let passed = result.verdict.passed;
        probes.push(result);
        if passed {
            pass = Some(pass.map_or(rate, |p: f64| p.max(rate)));
        } else {
            fail = Some(fail.map_or(rate, |f: f64| f.min(rate)));
        }
        match (pass, fail) {
            (Some(low), None) => {
                if low >= search.max_rate {
                    break format!("reached --max-rate {} without failing", search.max_rate);
                }
                rate = (low * search.growth).min(search.max_rate);
            }
            (None, Some(high)) => {
                if high <= 1.0 {
                    break "even 1 req/s fails the SLO".to_owned();
                }
                rate = (high / search.growth).max(1.0);
            }
            (Some(low), Some(high)) => {
                if high <= low || (high - low) / low <= search.precision {
                    break format!("bracketed within {:.0}%", search.precision * 100.0);
                }
                rate = (low + high) / 2.0;
            }
            (None, None) => unreachable!("every probe either passes or fails"),
        }
    };
    let at_max = pass
        .and_then(|p| probes.iter().rev().find(|probe| probe.rate_rps == p && probe.verdict.passed))
        .map(|p| p.phase.clone());
    Ok(FindMax {
        slo: search.slo,
        max_rps: pass,
        max_events_per_sec: at_max.as_ref().map(|p| p.offered_events_per_sec),
        first_failing_rps: fail,
        at_max,
        probes,
        stopped_because,
    })
}
