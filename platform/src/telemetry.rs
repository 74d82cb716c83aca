//! OpenTelemetry for every service: one meter provider per service that feeds a Prometheus
//! registry (scraped on the admin port) and, when an endpoint is configured, OTLP; and an OTLP
//! tracer that exists only when an endpoint is configured, so tracing costs nothing otherwise.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;
use prometheus::{Encoder as _, TextEncoder};
use serde::{Deserialize, Serialize};

/// Where telemetry goes besides the Prometheus scrape on the admin port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP collector base URL, such as `http://otel-collector:4318`; traces go to
    /// `/v1/traces` and metrics to `/v1/metrics` under it. Plain `http://` only: run a
    /// collector beside the service to forward with TLS. Empty: no OTLP export, and no spans
    /// are even created.
    pub otlp_endpoint: String,
    /// How often metrics are pushed over OTLP, in milliseconds.
    pub otlp_export_interval_ms: u64,
    /// Share of requests traced when OTLP is on, from 0.0 to 1.0 (parent-based).
    pub trace_sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { otlp_endpoint: String::new(), otlp_export_interval_ms: 10_000, trace_sample_ratio: 0.01 }
    }
}

/// The admin listener: `/metrics`, `/healthz` and `/readyz`, apart from the public port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener (Prometheus scrape, health and readiness; the gateway's
    /// console). It is for operators: keep it on loopback or a private network. Empty: none.
    pub listen: String,
}

/// Default admin address: the Prometheus exporter's customary port, on loopback.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: DEFAULT_ADMIN_LISTEN.to_owned() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot set up the Prometheus exporter: {0}")]
    Prometheus(String),
    #[error("cannot set up the OTLP exporter for {endpoint}: {reason}")]
    Otlp { endpoint: String, reason: String },
}

/// One service's telemetry: its meter, Prometheus text, and the tracer when OTLP is on.
pub struct Telemetry {
    service: &'static str,
    meter_provider: SdkMeterProvider,
    meter: Meter,
    registry: prometheus::Registry,
    tracer_provider: Option<SdkTracerProvider>,
    tracer: Option<Tracer>,
    /// Observable instruments made by `observe_*`, kept registered for the service's life.
    observers: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send + Sync>>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").field("service", &self.service).field("tracing", &self.tracer.is_some()).finish()
    }
}

impl Telemetry {
    /// Metrics to Prometheus, plus OTLP metrics and traces when `config.otlp_endpoint` is set.
    /// Each call makes an independent provider and registry, so tests can run several
    /// services in one process without mixing their numbers.
    pub fn new(service: &'static str, config: &TelemetryConfig) -> Result<Self, TelemetryError> {
        let resource = Resource::builder().with_service_name(service).build();
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_units()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| TelemetryError::Prometheus(e.to_string()))?;
        let mut builder = SdkMeterProvider::builder().with_resource(resource.clone()).with_reader(exporter);
        let endpoint = config.otlp_endpoint.trim_end_matches('/');
        let otlp_error = |reason: String| TelemetryError::Otlp { endpoint: config.otlp_endpoint.clone(), reason };
        let (mut tracer_provider, mut tracer) = (None, None);
        if endpoint.starts_with("https://") {
            // The exporter's HTTP client is built without TLS, to keep a second TLS stack
            // out of the binary; a collector beside the service forwards with TLS.
            return Err(otlp_error("https is not supported: send OTLP to a collector over http://".into()));
        }
        if !endpoint.is_empty() {
            use opentelemetry_otlp::WithExportConfig as _;
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_endpoint(format!("{endpoint}/v1/metrics"))
                .build()
                .map_err(|e| otlp_error(e.to_string()))?;
            let interval = Duration::from_millis(config.otlp_export_interval_ms.max(100));
            builder = builder.with_reader(PeriodicReader::builder(metrics).with_interval(interval).build());
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{endpoint}/v1/traces"))
                .build()
                .map_err(|e| otlp_error(e.to_string()))?;
            let ratio = config.trace_sample_ratio.clamp(0.0, 1.0);
            let provider = SdkTracerProvider::builder()
                .with_resource(resource)
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
                .with_batch_exporter(spans)
                .build();
            tracer = Some(provider.tracer(service));
            tracer_provider = Some(provider);
        }
        let meter_provider = builder.build();
        let meter = meter_provider.meter(service);
        let observers = std::sync::Mutex::default();
        Ok(Self { service, meter_provider, meter, registry, tracer_provider, tracer, observers })
    }

    /// Prometheus only: for handlers built without a config (tests, benchmarks).
    pub fn local(service: &'static str) -> Self {
        Self::new(service, &TelemetryConfig::default()).unwrap_or_else(|e| unreachable!("no OTLP to fail: {e}"))
    }

    /// The service's meter: create instruments from it once, at startup.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The tracer, only when OTLP is configured; `None` means: create no spans at all.
    pub fn tracer(&self) -> Option<&Tracer> {
        self.tracer.as_ref()
    }

    /// Exports a count the service already keeps (an atomic, say) as a monotonic counter,
    /// read at each scrape or export. Prometheus shows it as `<name>_total`, dots as `_`.
    pub fn observe_counter(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        let counter = self
            .meter
            .u64_observable_counter(name)
            .with_description(help)
            .with_callback(move |observer| observer.observe(read(), &[]))
            .build();
        self.observers.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(counter));
    }

    /// Exports a level the service already keeps (lag, queue size, 0/1 state) as a gauge.
    pub fn observe_gauge(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        let gauge = self
            .meter
            .f64_observable_gauge(name)
            .with_description(help)
            .with_callback(move |observer| observer.observe(read(), &[]))
            .build();
        self.observers.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(gauge));
    }

    /// Exports each value in `kept` that `source` keeps itself, read at each scrape or export:
    /// the service counts in plain atomics on its hot path, and names and describes each value
    /// once, in a table.
    pub fn observe_kept<M: Send + Sync + 'static>(&self, source: &Arc<M>, kept: &'static [Kept<M>]) {
        for value in kept {
            let source = source.clone();
            match value.read {
                KeptValue::Counter(read) => self.observe_counter(value.name, value.help, move || read(&source)),
                KeptValue::Gauge(read) => self.observe_gauge(value.name, value.help, move || read(&source)),
            }
        }
    }

    /// Keeps instruments (such as `kafka_stats::register_kafka_stats`'s gauges) registered.
    pub fn keep<T: Send + Sync + 'static>(&self, instruments: T) {
        self.observers.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(instruments));
    }

    /// Every instrument in Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Pushes what is pending over OTLP and stops the exporters.
    pub fn shutdown(&self) {
        if let Some(provider) = &self.tracer_provider {
            let _ = provider.shutdown();
        }
        let _ = self.meter_provider.shutdown();
    }
}

/// A value a service keeps itself, and how to export it.
#[derive(Debug)]
pub struct Kept<M: 'static> {
    /// The instrument's name; Prometheus shows a counter as `<name>_total`, dots as `_`.
    pub name: &'static str,
    pub help: &'static str,
    pub read: KeptValue<M>,
}

/// Whether a kept value only grows (a counter) or goes up and down (a gauge), and how to read
/// it from its keeper.
#[derive(Debug)]
pub enum KeptValue<M: 'static> {
    Counter(fn(&M) -> u64),
    Gauge(fn(&M) -> f64),
}

impl<M> Kept<M> {
    /// The value's current reading, for tests and logs.
    pub fn value(&self, source: &M) -> f64 {
        match self.read {
            KeptValue::Counter(read) => read(source) as f64,
            KeptValue::Gauge(read) => read(source),
        }
    }
}

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
