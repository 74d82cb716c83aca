//! The enricher benchmark: the enricher's events/s beside a plain consume→produce passthrough
//! with the same librdkafka settings, on the same broker and input, in one process, taking
//! turns so that a noisy machine or a broker slowing with its log hits both alike.

mod fill;
pub use fill::raw_events;
mod passthrough;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clickstream_enricher::metrics::EnricherMetrics;
use clickstream_enricher::EnricherConfig;
use clickstream_platform::kafka::{apply_topics, TopicSpec};
use serde::Serialize;

use crate::cpu::process_cpu_seconds;
use crate::payload::catalog::{Catalog, BUILTIN};

/// The goal for enricher events/s over passthrough events/s, which the report compares against:
/// enrichment may at most double the cost of consuming and producing an event.
pub const RATIO_GOAL: f64 = 0.5;

const WATCH_EVERY: Duration = Duration::from_millis(50);
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug, Clone)]
pub struct EnricherBenchOptions {
    /// The enricher's config (Kafka, guarantee, enrichments); its topics and group are replaced
    /// by the benchmark's own, unique per run.
    pub config: EnricherConfig,
    /// Events in the raw topic; each contender reads them all.
    pub events: usize,
    /// Partitions of the raw topic and of every co-partitioned output.
    pub partitions: i32,
    /// Rounds of passthrough plus enricher; the order alternates per round.
    pub rounds: usize,
    /// Simulated visitors (sessions and keys spread over them).
    pub visitors: usize,
    pub seed: u64,
    /// Longest a contender may take to process every event.
    pub phase_timeout: Duration,
}

/// The two sides of the ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contender {
    Passthrough,
    Enricher,
}

impl Contender {
    pub fn label(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Enricher => "enricher",
        }
    }
}

/// One contender's pass over the input.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub contender: Contender,
    pub round: usize,
    /// Pipeline threads the contender ran.
    pub threads: usize,
    /// Input records processed.
    pub events: u64,
    /// Output records Kafka acknowledged (the enricher's include repartitioned activities,
    /// window rows and dead letters).
    pub outputs: u64,
    /// From the first record consumed to the last output acknowledged.
    pub seconds: f64,
    pub events_per_sec: f64,
    /// CPU seconds this process used meanwhile: the contender, librdkafka and the watcher.
    pub cpu_seconds: Option<f64>,
}

impl PhaseResult {
    /// CPU of the whole process per input event, in microseconds.
    pub fn cpu_micros_per_event(&self) -> Option<f64> {
        self.cpu_seconds.filter(|_| self.events > 0).map(|cpu| cpu * 1e6 / self.events as f64)
    }
}

/// Every phase, and the ratio of the medians.
#[derive(Debug, Clone, Serialize)]
pub struct EnricherBenchReport {
    pub events: usize,
    pub partitions: i32,
    pub guarantee: String,
    pub phases: Vec<PhaseResult>,
    pub passthrough_events_per_sec: f64,
    pub enricher_events_per_sec: f64,
    pub ratio: f64,
}

/// One run's topics; outputs are fresh per phase so no phase resumes from another's.
#[derive(Debug, Clone)]
struct BenchTopics {
    prefix: String,
    raw: String,
    products: String,
}

impl BenchTopics {
    fn output(&self, round: usize, name: &str) -> String {
        format!("{}.r{round}.{name}", self.prefix)
    }

    fn specs(&self, rounds: usize, partitions: i32) -> Vec<TopicSpec> {
        let spec = |name: String, partitions: i32, cleanup_policy: &str| TopicSpec {
            name,
            partitions,
            replication: 1,
            cleanup_policy: cleanup_policy.to_owned(),
        };
        let mut specs = vec![spec(self.raw.clone(), partitions, "delete"), spec(self.products.clone(), 1, "compact")];
        for round in 1..=rounds {
            for name in ["passthrough", "enriched", "repartition", "window-watermarks"] {
                specs.push(spec(self.output(round, name), partitions, "delete"));
            }
            specs.push(spec(self.output(round, "aggregates"), 1, "compact"));
            specs.push(spec(self.output(round, "dlq"), 1, "delete"));
            specs.push(spec(self.output(round, "product-versions"), 1, "compact,delete"));
        }
        specs
    }

    fn enricher_config(&self, base: &EnricherConfig, round: usize) -> EnricherConfig {
        let mut config = base.clone();
        let settings = &mut config.enricher;
        settings.group_id = self.output(round, "enricher");
        settings.inputs = vec![self.raw.clone()];
        config.topics.products = self.products.clone();
        settings.topics.enriched = self.output(round, "enriched");
        settings.topics.repartition = self.output(round, "repartition");
        settings.topics.aggregates = self.output(round, "aggregates");
        settings.topics.dlq = self.output(round, "dlq");
        settings.topics.product_versions = self.output(round, "product-versions");
        settings.topics.window_watermarks = self.output(round, "window-watermarks");
        config
    }
}

/// Creates the topics, fills the input, runs the rounds and prints the table.
pub async fn run(options: &EnricherBenchOptions) -> anyhow::Result<EnricherBenchReport> {
    anyhow::ensure!(options.events > 0 && options.rounds > 0 && options.partitions > 0, "nothing to run");
    let prefix = format!("bench-enricher-{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    let topics = BenchTopics { raw: format!("{prefix}.raw"), products: format!("{prefix}.products"), prefix };
    let kafka = options.config.kafka.clone();
    println!(
        "enricher benchmark: {} events, {} partitions, guarantee {}, broker {}, topics {}.*",
        options.events,
        options.partitions,
        options.config.enricher.guarantee.as_str(),
        kafka.bootstrap_servers,
        topics.prefix
    );
    apply_topics(&kafka, &topics.specs(options.rounds, options.partitions), Duration::from_secs(30))
        .await
        .context("creating the benchmark's topics")?;
    let options = options.clone();
    tokio::task::spawn_blocking(move || run_blocking(&options, &topics)).await?
}

fn run_blocking(options: &EnricherBenchOptions, topics: &BenchTopics) -> anyhow::Result<EnricherBenchReport> {
    let kafka = &options.config.kafka;
    let rows = clickstream_enricher::products::parse_catalog(BUILTIN, false, "sample catalog")?;
    // Valid since the epoch, so every generated event joins it whatever its timestamp.
    clickstream_enricher::products::publish_catalog(
        kafka,
        &topics.products,
        &rows,
        Some(clickstream_enricher::products::VALID_SINCE_THE_EPOCH_MS),
    )?;
    let catalog = Arc::new(Catalog::builtin());
    let records = fill::raw_events(&catalog, options.events, options.visitors, options.seed);
    fill::produce_raw(kafka, &topics.raw, &records)?;
    drop(records);
    let mut phases = Vec::new();
    for round in 1..=options.rounds {
        let order = if round % 2 == 1 {
            [Contender::Passthrough, Contender::Enricher]
        } else {
            [Contender::Enricher, Contender::Passthrough]
        };
        for contender in order {
            let result = match contender {
                Contender::Passthrough => run_passthrough(options, topics, round)?,
                Contender::Enricher => run_enricher(options, topics, round)?,
            };
            println!(
                "  round {round} {}: {} events in {:.2}s = {:.0} events/s",
                contender.label(),
                result.events,
                result.seconds,
                result.events_per_sec
            );
            phases.push(result);
        }
    }
    let report = summarize(options, phases);
    print_report(&report);
    Ok(report)
}

fn run_passthrough(options: &EnricherBenchOptions, topics: &BenchTopics, round: usize) -> anyhow::Result<PhaseResult> {
    let mut config = topics.enricher_config(&options.config, round);
    config.enricher.group_id = topics.output(round, "passthrough-group");
    let output = topics.output(round, "passthrough");
    let (counters, stop, thread) = passthrough::spawn(config, topics.raw.clone(), output);
    let expected = options.events as u64;
    let measured = watch(options, Contender::Passthrough, round, 1, || {
        let written = counters.delivered.load(Ordering::Relaxed);
        Progress {
            consumed: counters.consumed.load(Ordering::Relaxed),
            handled: written,
            outputs: written,
            done: written >= expected,
        }
    });
    stop.store(true, Ordering::Relaxed);
    let finished = thread.join().map_err(|_| anyhow::anyhow!("the passthrough thread panicked"))?;
    finished.context("passthrough")?;
    measured
}

fn run_enricher(options: &EnricherBenchOptions, topics: &BenchTopics, round: usize) -> anyhow::Result<PhaseResult> {
    let config = topics.enricher_config(&options.config, round);
    let metrics = Arc::new(EnricherMetrics::default());
    let handle = clickstream_enricher::start_with_metrics(config.clone(), metrics.clone())?;
    let expected = options.events as u64;
    let measured = watch(options, Contender::Enricher, round, handle.threads(), || {
        let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let handled = get(&metrics.events_enriched) + get(&metrics.dead_letters) + get(&metrics.duplicates_dropped);
        let consumed = get(&metrics.records_consumed);
        let (sent, delivered) = (get(&metrics.outputs_sent), get(&metrics.outputs_delivered));
        // Done when every input is handled, every repartition record has been read back
        // into the windows, and every output is acknowledged.
        let done = handled >= expected && consumed >= expected + get(&metrics.repartition_records) && delivered >= sent;
        Progress { consumed: consumed.min(expected), handled, outputs: delivered, done }
    });
    handle.stop();
    measured
}

/// One look at a phase's progress.
struct Progress {
    /// Input records read so far.
    consumed: u64,
    /// Input records whose outcome is known (written, dead-lettered or dropped as repeats).
    handled: u64,
    outputs: u64,
    done: bool,
}

/// Polls `look` until the phase is done; times from the first record consumed.
fn watch(
    options: &EnricherBenchOptions,
    contender: Contender,
    round: usize,
    threads: usize,
    mut look: impl FnMut() -> Progress,
) -> anyhow::Result<PhaseResult> {
    let launched = Instant::now();
    let mut started: Option<(Instant, Option<f64>)> = None;
    let mut last_report = Instant::now();
    loop {
        let progress = look();
        if started.is_none() && progress.consumed > 0 {
            started = Some((Instant::now(), process_cpu_seconds(std::process::id())));
        }
        if let (true, Some((at, cpu))) = (progress.done, started) {
            let seconds = at.elapsed().as_secs_f64();
            let cpu_now = process_cpu_seconds(std::process::id());
            let events = options.events as u64;
            return Ok(PhaseResult {
                contender,
                round,
                threads,
                events,
                outputs: progress.outputs,
                seconds,
                events_per_sec: events as f64 / seconds.max(1e-9),
                cpu_seconds: cpu.zip(cpu_now).map(|(a, b)| b - a),
            });
        }
        anyhow::ensure!(
            launched.elapsed() < options.phase_timeout,
            "round {round} {}: only {} of {} events handled after {:?}",
            contender.label(),
            progress.handled,
            options.events,
            options.phase_timeout
        );
        if last_report.elapsed() >= PROGRESS_EVERY {
            println!(
                "  round {round} {}: {} of {} events read, {} handled, {:.0}s",
                contender.label(),
                progress.consumed,
                options.events,
                progress.handled,
                launched.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn summarize(options: &EnricherBenchOptions, phases: Vec<PhaseResult>) -> EnricherBenchReport {
    let rate =
        |who: Contender| median(phases.iter().filter(|p| p.contender == who).map(|p| p.events_per_sec).collect());
    let (passthrough, enricher) = (rate(Contender::Passthrough), rate(Contender::Enricher));
    EnricherBenchReport {
        events: options.events,
        partitions: options.partitions,
        guarantee: options.config.enricher.guarantee.as_str().to_owned(),
        passthrough_events_per_sec: passthrough,
        enricher_events_per_sec: enricher,
        ratio: if passthrough > 0.0 { enricher / passthrough } else { 0.0 },
        phases,
    }
}

fn print_report(report: &EnricherBenchReport) {
    println!();
    println!("| round | contender | threads | events | seconds | events/s | CPU s (this process) | CPU µs per event |");
    println!("|---|---|---|---|---|---|---|---|");
    for phase in &report.phases {
        let cpu = phase.cpu_seconds.map_or("n/a".to_owned(), |c| format!("{c:.2}"));
        let per_event = phase.cpu_micros_per_event().map_or("n/a".to_owned(), |us| format!("{us:.1}"));
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {cpu} | {per_event} |",
            phase.round,
            phase.contender.label(),
            phase.threads,
            phase.events,
            phase.seconds,
            phase.events_per_sec
        );
    }
    println!();
    println!(
        "enricher ({}) {:.0} events/s vs passthrough {:.0} events/s (medians): ratio {:.2} (goal >= {RATIO_GOAL})",
        report.guarantee, report.enricher_events_per_sec, report.passthrough_events_per_sec, report.ratio
    );
    let cpu = |who: Contender| {
        median(
            report.phases.iter().filter(|p| p.contender == who).filter_map(PhaseResult::cpu_micros_per_event).collect(),
        )
    };
    let threads = report.phases.iter().find(|p| p.contender == Contender::Enricher).map_or(1, |p| p.threads);
    println!(
        "CPU per event (medians): enricher {:.1} µs with {threads} pipeline thread(s), passthrough {:.1} µs: {:.1}x",
        cpu(Contender::Enricher),
        cpu(Contender::Passthrough),
        cpu(Contender::Enricher) / cpu(Contender::Passthrough).max(1e-9)
    );
}
