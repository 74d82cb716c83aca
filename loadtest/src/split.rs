//! Where a single event's cost goes: the server CPU per request of three closed-loop peaks
//! side by side, hyper-baseline (HTTP alone), gateway-null (HTTP and the gateway's handler,
//! no Kafka) and the gateway (all of it), so the gap to the hyper server splits into the
//! handler's part and Kafka's part in every `compare --peak`.

use crate::payload::Mode;
use crate::report::TargetRun;
use crate::target::TargetKind;

/// `kind`'s single-event peak: its rate and, when its server was pinned, its CPU per request
/// in µs.
fn peak(runs: &[TargetRun], kind: TargetKind) -> Option<(f64, Option<f64>)> {
    let run = runs.iter().find(|r| r.peak && r.target.kind == kind && r.mode == Mode::Single)?;
    let phase = run.phases.first()?;
    let rate = phase.achieved_rps;
    Some((rate, phase.server_cpu_cores.filter(|_| rate > 0.0).map(|cores| cores * 1e6 / rate)))
}

/// The split's terminal line; `None` unless all three peaks ran.
pub fn cost_split_line(runs: &[TargetRun]) -> Option<String> {
    let (http_rate, http) = peak(runs, TargetKind::HyperBaseline)?;
    let (null_rate, null) = peak(runs, TargetKind::GatewayNull)?;
    let (_, full) = peak(runs, TargetKind::Gateway)?;
    // gateway-null's rate over hyper-baseline's: the most the single-event ratio could be
    // were Kafka free.
    let ceiling = if http_rate > 0.0 { null_rate / http_rate } else { 0.0 };
    let (Some(http), Some(null), Some(full)) = (http, null, full) else {
        return Some(format!(
            "at the single-event peaks, gateway-null / hyper-baseline: {ceiling:.2} (server CPU not measured)"
        ));
    };
    Some(format!(
        "server CPU per request at the single-event peaks: hyper-baseline {http:.1} µs, gateway-null {null:.1} µs \
         (+{:.1} over hyper), gateway {full:.1} µs (+{:.1} for Kafka); gateway-null / hyper-baseline: {ceiling:.2}",
        null - http,
        full - null,
    ))
}
