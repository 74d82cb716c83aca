//! The gateway's instruments on its OpenTelemetry meter: requests, events, protection, spool
//! and dedup. Labels are route templates and fixed kinds, never paths or user data.

use std::sync::{Arc, Weak};
use std::time::Duration;

use clickstream_platform::telemetry::Telemetry;
use http::StatusCode;
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;

use crate::dedup::Dedup;
use crate::sink::EventSink;

/// Service name on every exported series.
pub const SERVICE_NAME: &str = "clickstream-gateway";

/// Latency buckets in seconds: sub-millisecond answers up to the enqueue deadline and beyond.
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub struct Metrics {
    telemetry: Arc<Telemetry>,
    requests: Counter<u64>,
    request_duration: Histogram<f64>,
    events_accepted: Counter<u64>,
    events_rejected: Counter<u64>,
    events_suppressed: Counter<u64>,
    rate_limited: Counter<u64>,
    shed: Counter<u64>,
    route_fallbacks: Counter<u64>,
    hot_key_overflows: Counter<u64>,
    pixels_dropped: Counter<u64>,
    plan_violations: Counter<u64>,
    plan_reload_failures: Counter<u64>,
    /// Held so the series exists from the start; the Kafka sink records into it.
    _produce_duration: Histogram<f64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("telemetry", &self.telemetry).finish()
    }
}

impl Metrics {
    /// Creates the instruments, and observers of the spool and dedup that read them at scrape time.
    pub fn new(telemetry: Arc<Telemetry>, sink: &Weak<dyn EventSink>, dedup: Weak<Dedup>) -> Self {
        let meter = telemetry.meter();
        let counter = |name: &'static str, help: &'static str| meter.u64_counter(name).with_description(help).build();
        let histogram = |name: &'static str, help: &'static str| {
            meter.f64_histogram(name).with_description(help).with_boundaries(LATENCY_BUCKETS.to_vec()).build()
        };
        let metrics = Self {
            requests: counter("clickstream.http.requests", "HTTP requests by route template and status."),
            request_duration: histogram(
                "clickstream.http.request.duration.seconds",
                "Time from request to response by route template, in seconds.",
            ),
            events_accepted: counter("clickstream.events.accepted", "Events accepted (in Kafka or spooled)."),
            events_rejected: counter("clickstream.events.rejected", "Events rejected as invalid, by reason."),
            events_suppressed: counter(
                "clickstream.events.suppressed",
                "Events dropped because their userId or anonymousId is on the suppression list.",
            ),
            rate_limited: counter("clickstream.rate_limited", "Requests answered 429."),
            shed: counter("clickstream.shed", "Requests shed with a fast 503, by error kind."),
            route_fallbacks: counter(
                "clickstream.route.fallbacks",
                "Events sent to the default route because their dynamic topic was not allowed or missing.",
            ),
            hot_key_overflows: counter(
                "clickstream.hot_key.overflows",
                "Events rerouted to the overflow topic because their key was hot.",
            ),
            pixels_dropped: counter(
                "clickstream.pixel.dropped",
                "Pixel requests answered with the GIF but not delivered as an event, by error kind.",
            ),
            plan_violations: counter(
                "clickstream.tracking_plan.violations",
                "Events that violated their source's tracking plan, by source, event (named in the plan, else `other`) and action.",
            ),
            plan_reload_failures: counter(
                "clickstream.tracking_plan.reload.failures",
                "Reloads refused because a tracking plan did not compile; the running plans were kept.",
            ),
            _produce_duration: Self::produce_duration_histogram(&telemetry),
            telemetry,
        };
        metrics.observe_dedup(dedup);
        metrics.observe_spool(sink);
        metrics
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    pub fn request(&self, route: &'static str, status: StatusCode, elapsed: Duration) {
        let route = KeyValue::new("route", route);
        self.request_duration.record(elapsed.as_secs_f64(), std::slice::from_ref(&route));
        self.requests.add(1, &[route, KeyValue::new("status", i64::from(status.as_u16()))]);
    }

    pub fn accepted(&self, events: usize) {
        if events > 0 {
            self.events_accepted.add(events as u64, &[]);
        }
    }

    pub fn rejected(&self, reason: &'static str) {
        self.events_rejected.add(1, &[KeyValue::new("reason", reason)]);
    }

    pub fn suppressed(&self, events: usize) {
        if events > 0 {
            self.events_suppressed.add(events as u64, &[]);
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.add(1, &[]);
    }

    /// `kind`: `overloaded` (the in-flight cap), `cpu_overloaded` or `kafka_behind`.
    pub fn shed(&self, kind: &'static str) {
        self.shed.add(1, &[KeyValue::new("error", kind)]);
    }

    pub fn route_fallback(&self) {
        self.route_fallbacks.add(1, &[]);
    }

    pub fn hot_key_overflow(&self) {
        self.hot_key_overflows.add(1, &[]);
    }

    /// A pixel whose event did not reach `events.raw`: the image still loaded, so only this says so.
    pub fn pixel_dropped(&self, kind: &'static str) {
        self.pixels_dropped.add(1, &[KeyValue::new("error", kind)]);
    }

    /// An event that violated its plan. `event` is the schema's label, never the event's own
    /// name, so the series stay as few as the plan's files.
    pub fn plan_violation(&self, source: &str, event: &std::sync::Arc<str>, action: &'static str) {
        let labels = [
            KeyValue::new("source", source.to_owned()),
            KeyValue::new("event", event.to_string()),
            KeyValue::new("action", action),
        ];
        self.plan_violations.add(1, &labels);
    }

    pub fn plan_reload_failed(&self) {
        self.plan_reload_failures.add(1, &[]);
    }

    /// The produce-latency histogram, for the Kafka sink (which exists before `Metrics`; the
    /// meter hands out the same instrument for the same name).
    pub fn produce_duration_histogram(telemetry: &Telemetry) -> Histogram<f64> {
        telemetry
            .meter()
            .f64_histogram("clickstream.kafka.produce.duration.seconds")
            .with_description(
                "Time from handing records to the producer until Kafka acknowledged all of them (or gave up), in seconds.",
            )
            .with_boundaries(LATENCY_BUCKETS.to_vec())
            .build()
    }

    fn observe_dedup(&self, dedup: Weak<Dedup>) {
        self.telemetry.observe_counter(
            "clickstream.dedup.drops",
            "Retried duplicates dropped before Kafka.",
            move || dedup.upgrade().map_or(0, |dedup| dedup.drops()),
        );
    }

    fn observe_spool(&self, sink: &Weak<dyn EventSink>) {
        let rejecting = sink.clone();
        self.telemetry.observe_counter(
            "clickstream.kafka.rejected",
            "Records Kafka refused for good (larger than message.max.bytes); dropped, not spooled or retried.",
            move || rejecting.upgrade().map_or(0, |sink| sink.rejected_by_kafka()),
        );
        let answered = sink.clone();
        self.telemetry.observe_counter(
            "clickstream.spool.after_answer",
            "Events answered under ack = none that Kafka then failed to take, sent to the spool.",
            move || answered.upgrade().map_or(0, |sink| sink.spooled_after_answer()),
        );
        let gauge = |name: &'static str, help: &'static str, read: fn(&crate::spool::SpoolStats) -> f64| {
            let sink = sink.clone();
            let current = move || sink.upgrade().and_then(|s| s.spool_stats()).map_or(0.0, |stats| read(&stats));
            self.telemetry.observe_gauge(name, help, current);
        };
        gauge("clickstream.spool.bytes", "Bytes waiting in the spool.", |s| s.bytes as f64);
        gauge("clickstream.spool.events", "Events waiting in the spool.", |s| s.records as f64);
        gauge("clickstream.spool.oldest.age.seconds", "Age of the oldest spooled event, in seconds.", |s| {
            s.oldest_age_ms as f64 / 1000.0
        });
    }
}
