//! The capacity summary: sustained events per second per gateway core at the SLO, and how
//! many instances a target traffic needs.

use serde::Serialize;

use crate::search::FindMax;

#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    /// What was measured: `gateway`, `raw-kafka`...
    pub server: String,
    pub slo_p99_ms: f64,
    /// Highest rate that met the SLO, per instance.
    pub max_requests_per_sec: f64,
    pub max_events_per_sec: f64,
    /// Cores one instance used (its taskset pinning), when known.
    pub cores_per_instance: Option<usize>,
    pub events_per_sec_per_core: Option<f64>,
    /// Events per second the capacity plan is for.
    pub target_events_per_sec: Option<f64>,
    /// Share of the maximum each instance is planned to run at, leaving headroom for spikes.
    pub planned_utilization: f64,
    pub instances_needed: Option<u64>,
}

impl Capacity {
    pub fn from_search(
        server: &str,
        search: &FindMax,
        cores: Option<usize>,
        target_events_per_sec: Option<f64>,
        utilization: f64,
    ) -> Option<Self> {
        let max_requests_per_sec = search.max_rps?;
        let max_events_per_sec = search.max_events_per_sec?;
        let utilization = utilization.clamp(0.01, 1.0);
        let instances_needed = target_events_per_sec
            .filter(|_| max_events_per_sec > 0.0)
            .map(|target| (target / (max_events_per_sec * utilization)).ceil().max(1.0) as u64);
        Some(Self {
            server: server.to_owned(),
            slo_p99_ms: search.slo.p99_ms,
            max_requests_per_sec,
            max_events_per_sec,
            cores_per_instance: cores,
            events_per_sec_per_core: cores.map(|c| max_events_per_sec / c as f64),
            target_events_per_sec,
            planned_utilization: utilization,
            instances_needed,
        })
    }

    /// Lines for the terminal.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "max sustainable at p99 <= {} ms: {:.0} req/s = {:.0} events/s per instance",
            self.slo_p99_ms, self.max_requests_per_sec, self.max_events_per_sec
        )];
        match (self.cores_per_instance, self.events_per_sec_per_core) {
            (Some(cores), Some(per_core)) => {
                lines.push(format!(
                    "per {} core: {per_core:.0} events/s ({cores} core(s) per instance, pinned)",
                    self.server
                ));
            }
            _ => lines.push(format!("per {} core: unknown (not pinned with --gateway-cpus)", self.server)),
        }
        if let (Some(target), Some(instances)) = (self.target_events_per_sec, self.instances_needed) {
            lines.push(format!(
                "for {target:.0} events/s at {:.0}% of the maximum: {instances} instance(s)",
                self.planned_utilization * 100.0
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Slo;

    #[test]
    fn instances_are_rounded_up_with_headroom() {
        let search = FindMax {
            slo: Slo { p99_ms: 10.0, max_error_rate: 0.001 },
            max_rps: Some(200.0),
            max_events_per_sec: Some(20_000.0),
            first_failing_rps: Some(220.0),
            at_max: None,
            probes: Vec::new(),
            stopped_because: String::new(),
        };
        let capacity =
            Capacity::from_search("gateway", &search, Some(1), Some(100_000.0), 0.7).expect("a max was found");
        assert_eq!(capacity.events_per_sec_per_core, Some(20_000.0));
        assert!(capacity
            .describe()
            .iter()
            .any(|l| l == "per gateway core: 20000 events/s (1 core(s) per instance, pinned)"));
        // 100k / (20k × 0.7) = 7.14 → 8.
        assert_eq!(capacity.instances_needed, Some(8));
        let unpinned = Capacity::from_search("gateway", &search, None, None, 0.7).expect("a max was found");
        assert_eq!((unpinned.events_per_sec_per_core, unpinned.instances_needed), (None, None));
    }
}
