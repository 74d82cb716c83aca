//! Where an event's cost goes: the server CPU per event of closed-loop peaks side by side.
//! Single events: hyper-baseline (HTTP alone), gateway-null (HTTP and the gateway's handler, no
//! Kafka) and the gateway (all of it), so the gap to the hyper server splits into the
//! handler's part and Kafka's part. Batches: gateway-null against the gateway, and gateway-null's
//! rate against raw-kafka's (raw-kafka produces from the generator's process, so its CPU is not
//! measured apart). Printed by every `compare --peak`.

use crate::report::{ratio, TargetRun};
use crate::target::TargetKind;

/// A target's peak in one kind of request: its events per second and, when its server's CPU
/// was measured, its CPU per event in µs.
fn peak(runs: &[TargetRun], kind: TargetKind, batched: bool) -> Option<(f64, Option<f64>)> {
    let phase = runs.iter().find(|r| r.peak && r.is(kind, batched))?.phases.first()?;
    let rate = phase.achieved_events_per_sec;
    Some((rate, phase.server_cpu_micros(rate)))
}

/// The single-event split's terminal line; `None` unless all three peaks ran.
pub fn single_line(runs: &[TargetRun]) -> Option<String> {
    let (http_rate, http) = peak(runs, TargetKind::HyperBaseline, false)?;
    let (null_rate, null) = peak(runs, TargetKind::GatewayNull, false)?;
    let (_, full) = peak(runs, TargetKind::Gateway, false)?;
    // The most the single-event ratio could be were Kafka free.
    let ceiling = ratio(null_rate, http_rate);
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

/// The batch split's terminal line; `None` unless gateway-null, the gateway and raw-kafka
/// each ran a batch peak.
pub fn batch_line(runs: &[TargetRun]) -> Option<String> {
    let (null_rate, null) = peak(runs, TargetKind::GatewayNull, true)?;
    let (_, full) = peak(runs, TargetKind::Gateway, true)?;
    let (raw_rate, _) = peak(runs, TargetKind::RawKafka, true)?;
    // The most the batch ratio could be were the gateway's Kafka work free.
    let ceiling = ratio(null_rate, raw_rate);
    let (Some(null), Some(full)) = (null, full) else {
        return Some(format!(
            "at the batch peaks, gateway-null / raw-kafka by rate: {ceiling:.2} (server CPU not measured)"
        ));
    };
    Some(format!(
        "server CPU per event at the batch peaks: gateway-null {null:.1} µs, gateway {full:.1} µs (+{:.1} for Kafka); \
         gateway-null / raw-kafka by rate: {ceiling:.2}",
        full - null,
    ))
}
