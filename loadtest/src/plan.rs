//! Rate profiles (fixed, step, ramp) turned into phases, and the instant each request of a
//! phase is due.

use std::time::Duration;

use serde::Serialize;

/// A stretch of the run whose offered rate goes linearly from `start_rate` to `end_rate`
/// (equal for a constant rate). Results are kept per phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Phase {
    /// Requests per second at the start of the phase.
    pub start_rate: f64,
    /// Requests per second at the end of the phase.
    pub end_rate: f64,
    /// How long the phase lasts.
    #[serde(serialize_with = "crate::report::serialize_secs")]
    pub duration: Duration,
}

impl Phase {
    pub fn fixed(rate: f64, duration: Duration) -> Self {
        Self { start_rate: rate, end_rate: rate, duration }
    }

    /// The mean offered rate over the phase, in requests per second.
    pub fn offered_rate(&self) -> f64 {
        (self.start_rate + self.end_rate) / 2.0
    }

    /// How many requests the phase schedules.
    pub fn requests(&self) -> u64 {
        (self.offered_rate() * self.duration.as_secs_f64()).round().max(0.0) as u64
    }

    /// When request `index` (from 0) is due, counted from the start of the phase. The count
    /// of requests due by time t is the integral of the rate, `a·t + b·t²/2`; this inverts it.
    pub fn due(&self, index: u64) -> Duration {
        let n = index as f64;
        let seconds = self.duration.as_secs_f64();
        let a = self.start_rate;
        let b = if seconds > 0.0 { (self.end_rate - self.start_rate) / seconds } else { 0.0 };
        let t = if b.abs() < 1e-9 {
            if a > 0.0 {
                n / a
            } else {
                0.0
            }
        } else {
            (-a + (a * a + 2.0 * b * n).max(0.0).sqrt()) / b
        };
        Duration::from_secs_f64(t.max(0.0))
    }
}

/// How the offered rate changes over a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// `rate` requests per second for `duration`.
    Fixed { rate: f64, duration: Duration },
    /// `steps` phases of `every` each, starting at `start` and adding `step` each time.
    Step { start: f64, step: f64, steps: u32, every: Duration },
    /// From `from` to `to` requests per second, linearly, over `duration`.
    Ramp { from: f64, to: f64, duration: Duration },
}

/// A ramp is measured in slices of about this length, so latency can be read against rate.
const RAMP_SLICE: Duration = Duration::from_secs(1);

impl Profile {
    pub fn phases(&self) -> Vec<Phase> {
        match *self {
            Self::Fixed { rate, duration } => vec![Phase::fixed(rate, duration)],
            Self::Step { start, step, steps, every } => {
                (0..steps.max(1)).map(|i| Phase::fixed(start + step * f64::from(i), every)).collect()
            }
            Self::Ramp { from, to, duration } => {
                let slices = (duration.as_secs_f64() / RAMP_SLICE.as_secs_f64()).ceil().max(1.0) as u32;
                let slice = duration / slices;
                (0..slices)
                    .map(|i| {
                        let at = |k: u32| from + (to - from) * f64::from(k) / f64::from(slices);
                        Phase { start_rate: at(i), end_rate: at(i + 1), duration: slice }
                    })
                    .collect()
            }
        }
    }

    /// The highest rate any phase reaches.
    pub fn peak_rate(&self) -> f64 {
        self.phases().iter().map(|p| p.start_rate.max(p.end_rate)).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_phase_spaces_requests_evenly() {
        let phase = Phase::fixed(100.0, Duration::from_secs(2));
        assert_eq!(phase.requests(), 200);
        assert_eq!(phase.due(0), Duration::ZERO);
        assert_eq!(phase.due(50), Duration::from_millis(500));
        assert_eq!(phase.due(199), Duration::from_millis(1990));
    }

    #[test]
    fn ramp_schedules_the_integral_of_its_rate() {
        // 0 -> 200 req/s over 2 s: 200 requests, the first 50 in the first second.
        let phase = Phase { start_rate: 0.0, end_rate: 200.0, duration: Duration::from_secs(2) };
        assert_eq!(phase.requests(), 200);
        let at_one_second = phase.due(50).as_secs_f64();
        assert!((at_one_second - 1.0).abs() < 1e-9, "{at_one_second}");
        assert!((phase.due(200).as_secs_f64() - 2.0).abs() < 1e-9);
        // Later requests come closer together.
        assert!(phase.due(11) - phase.due(10) > phase.due(191) - phase.due(190));
    }

    #[test]
    fn profiles_become_phases() {
        let step = Profile::Step { start: 100.0, step: 50.0, steps: 3, every: Duration::from_secs(5) };
        let rates: Vec<f64> = step.phases().iter().map(Phase::offered_rate).collect();
        assert_eq!(rates, vec![100.0, 150.0, 200.0]);
        assert_eq!(step.peak_rate(), 200.0);

        let ramp = Profile::Ramp { from: 0.0, to: 300.0, duration: Duration::from_secs(3) };
        let phases = ramp.phases();
        assert_eq!(phases.len(), 3);
        assert_eq!(phases[1].start_rate, 100.0);
        assert_eq!(phases[1].end_rate, 200.0);
        assert_eq!(phases.iter().map(Phase::requests).sum::<u64>(), 450);
    }
}
