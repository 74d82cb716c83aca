//! What a run measures: HdrHistograms of latency (from the intended send time, so stalls are
//! not hidden) and service time (from the actual send), status counts, late and dropped
//! sends, per phase and per second.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to ten minutes.
const HIGHEST_US: u64 = 600_000_000;

/// A histogram for whole phases: 3 significant digits.
pub fn phase_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap_or_else(|e| unreachable!("constant bounds are valid: {e}"))
}

/// A histogram for one second of the timeline: 2 significant digits are plenty for a chart.
fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 2).unwrap_or_else(|e| unreachable!("constant bounds are valid: {e}"))
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// Saturating record of a duration in microseconds.
pub fn record(histogram: &mut Histogram<u64>, duration: Duration) {
    let us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).clamp(1, HIGHEST_US);
    histogram.saturating_record(us);
}

/// How one request ended.
#[derive(Debug, Clone)]
pub struct Completion {
    pub phase: usize,
    /// From the intended send time to the end of the response.
    pub latency: Duration,
    /// From the actual send to the end of the response.
    pub service: Duration,
    /// Started more than the late threshold after its intended time (every connection was busy).
    pub late: bool,
    /// `200`, `503`, `timeout`, `connect`, `kafka:QueueFull`...
    pub status: std::borrow::Cow<'static, str>,
    pub ok: bool,
    pub events: u64,
    /// Seconds since the clock origin at which the response arrived.
    pub completed_at_s: f64,
}

/// One phase's measurements while the run is going.
#[derive(Debug)]
pub struct PhaseStats {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub statuses: BTreeMap<String, u64>,
    pub completed: u64,
    pub ok_requests: u64,
    pub ok_events: u64,
    pub late: u64,
    pub last_completion_s: f64,
}

impl Default for PhaseStats {
    fn default() -> Self {
        Self {
            latency: phase_histogram(),
            service: phase_histogram(),
            statuses: BTreeMap::new(),
            completed: 0,
            ok_requests: 0,
            ok_events: 0,
            late: 0,
            last_completion_s: 0.0,
        }
    }
}

/// One second of the run.
#[derive(Debug)]
pub struct Second {
    pub latency: Histogram<u64>,
    pub scheduled: u64,
    pub ok_requests: u64,
    pub ok_events: u64,
    pub errors: u64,
}

impl Default for Second {
    fn default() -> Self {
        Self { latency: second_histogram(), scheduled: 0, ok_requests: 0, ok_events: 0, errors: 0 }
    }
}

/// Everything recorded during a run; one, behind a mutex, shared by all connections.
#[derive(Debug, Default)]
pub struct Recorder {
    pub phases: Vec<PhaseStats>,
    pub seconds: Vec<Second>,
}

impl Recorder {
    pub fn new(phases: usize) -> Self {
        Self { phases: (0..phases).map(|_| PhaseStats::default()).collect(), seconds: Vec::new() }
    }

    pub fn second(&mut self, at_s: f64) -> &mut Second {
        let index = at_s.max(0.0) as usize;
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, Second::default);
        }
        &mut self.seconds[index]
    }

    pub fn record(&mut self, c: &Completion) {
        let phase = &mut self.phases[c.phase];
        record(&mut phase.latency, c.latency);
        record(&mut phase.service, c.service);
        // Looked up before inserting, so a known status costs no allocation.
        match phase.statuses.get_mut(&*c.status) {
            Some(count) => *count += 1,
            None => {
                phase.statuses.insert(c.status.to_string(), 1);
            }
        }
        phase.completed += 1;
        phase.late += u64::from(c.late);
        phase.last_completion_s = phase.last_completion_s.max(c.completed_at_s);
        if c.ok {
            phase.ok_requests += 1;
            phase.ok_events += c.events;
        }
        let second = self.second(c.completed_at_s);
        record(&mut second.latency, c.latency);
        if c.ok {
            second.ok_requests += 1;
            second.ok_events += c.events;
        } else {
            second.errors += 1;
        }
    }
}

/// One point of the per-second timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the start of the report's clock.
    pub second: u64,
    /// Requests whose intended send time fell in this second.
    pub offered_rps: u64,
    /// Successful responses that arrived in this second.
    pub ok_rps: u64,
    pub ok_events_per_sec: u64,
    pub errors: u64,
    /// Latency of the responses that arrived in this second.
    pub latency: Percentiles,
}

impl Recorder {
    pub fn timeline(&self) -> Vec<TimelinePoint> {
        self.seconds
            .iter()
            .enumerate()
            .filter(|(_, s)| s.scheduled > 0 || !s.latency.is_empty())
            .map(|(i, s)| TimelinePoint {
                second: i as u64,
                offered_rps: s.scheduled,
                ok_rps: s.ok_requests,
                ok_events_per_sec: s.ok_events,
                errors: s.errors,
                latency: Percentiles::of(&s.latency),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut histogram = phase_histogram();
        for ms in 1..=1000u64 {
            record(&mut histogram, Duration::from_millis(ms));
        }
        let p = Percentiles::of(&histogram);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn recorder_keeps_statuses_and_seconds() {
        let mut recorder = Recorder::new(1);
        let done = |status: &str, ok: bool, at: f64| Completion {
            phase: 0,
            latency: Duration::from_millis(5),
            service: Duration::from_millis(2),
            late: !ok,
            status: status.to_owned().into(),
            ok,
            events: 10,
            completed_at_s: at,
        };
        recorder.record(&done("200", true, 0.5));
        recorder.record(&done("200", true, 1.5));
        recorder.record(&done("503", false, 1.7));
        let phase = &recorder.phases[0];
        assert_eq!(phase.statuses.get("200"), Some(&2));
        assert_eq!(phase.statuses.get("503"), Some(&1));
        assert_eq!((phase.ok_requests, phase.ok_events, phase.late), (2, 20, 1));
        let timeline = recorder.timeline();
        assert_eq!(timeline.len(), 2);
        assert_eq!((timeline[1].ok_rps, timeline[1].errors), (1, 1));
    }
}
