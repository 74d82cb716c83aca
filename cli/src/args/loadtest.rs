//! Arguments of `clickstream loadtest` and its subcommands.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ConfigArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    pub command: Option<LoadtestCommand>,
    #[command(flatten)]
    pub run: LoadRunArgs,
}

#[derive(Debug, Subcommand)]
pub enum LoadtestCommand {
    /// Offer a rate profile, or search the max rate under a p99 SLO with --find-max.
    Run(LoadRunArgs),
    /// The gateway against hyper-baseline (single events) and raw-kafka (batches), with ratios.
    Compare(LoadCompareArgs),
    /// The scheduler's achieved rate beside the asked rate, against an in-process null server.
    BenchScheduler(BenchSchedulerArgs),
    /// The enricher's events/s beside a plain consume→produce passthrough on the same broker.
    BenchEnricher(BenchEnricherArgs),
    /// Memory per idle keep-alive connection (RSS), against hyper-baseline.
    IdleConnections(IdleConnectionsArgs),
    /// 0.7×R, then 2×R, then 0.7×R again: shedding, spooling and the time to recover.
    Overload(OverloadArgs),
    /// Serve hyper-baseline or gateway-null; the harness starts this, pinned, for baselines.
    #[command(hide = true)]
    Serve(ServeArgs),
}

/// Options of `run` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct LoadCommonArgs {
    /// Config of the gateway to start (and whose producer settings raw-kafka copies).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Load-test a server already running at this URL instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// Write key to send (default: the config's first source, else `loadtest-write-key`).
    #[arg(long)]
    pub write_key: Option<String>,
    /// CPUs to pin started servers to with `taskset -c`; `none` to not pin.
    #[arg(long, default_value = "1")]
    pub gateway_cpus: String,
    /// Keep-alive connections (concurrent produce calls for raw-kafka). With acks=all each
    /// request waits for Kafka, so rate × latency must stay well below this.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Request timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// A send starting this many ms after its intended time is counted late.
    #[arg(long, default_value_t = 1.0)]
    pub late_ms: f64,
    /// Queue at most this many seconds of the peak rate; later sends are counted dropped.
    #[arg(long, default_value_t = 2.0)]
    pub max_backlog_secs: f64,
    /// Simulated visitors.
    #[arg(long, default_value_t = 10_000)]
    pub visitors: usize,
    /// Seed of the visitor simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Product catalog, one JSON product per line (default: the bundled data/products.jsonl).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Read the events back from Kafka: HTTP→Kafka latency and loss.
    #[arg(long)]
    pub e2e: bool,
    /// Enricher output topic, also read back when it exists.
    #[arg(long, default_value = "events.enriched")]
    pub enriched_topic: String,
    /// Seconds to wait for missing events once none arrive.
    #[arg(long, default_value_t = 5.0)]
    pub e2e_drain_secs: f64,
    /// p99 latency SLO in milliseconds, for --find-max and compare.
    #[arg(long, default_value_t = 10.0)]
    pub slo_p99: f64,
    /// Largest share of failed or dropped requests a sustainable rate may have.
    #[arg(long, default_value_t = 0.001)]
    pub max_error_rate: f64,
    /// First rate the search tries, in requests per second.
    #[arg(long, default_value_t = 500.0)]
    pub start_rate: f64,
    /// The search never offers more requests per second than this.
    #[arg(long, default_value_t = 1_000_000.0)]
    pub max_rate: f64,
    /// Seconds per search probe.
    #[arg(long, default_value_t = 3.0)]
    pub probe_secs: f64,
    /// Factor between search steps before the first failure.
    #[arg(long, default_value_t = 2.0)]
    pub growth: f64,
    /// Stop bisecting when the bracket is this share of its low end.
    #[arg(long, default_value_t = 0.05)]
    pub precision: f64,
    /// Most probes one search may run.
    #[arg(long, default_value_t = 24)]
    pub max_probes: usize,
    /// Fail a rate on its first failing probe instead of repeating the probe once.
    #[arg(long)]
    pub no_retry: bool,
    /// Events per second to plan capacity for (instances needed).
    #[arg(long)]
    pub target_rate: Option<f64>,
    /// Share of the max rate each planned instance runs at.
    #[arg(long, default_value_t = 0.7)]
    pub utilization: f64,
    /// Seconds of unrecorded load before measuring each target.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_secs: f64,
    /// Directory for report.json and report.html.
    #[arg(long, default_value = "loadtest-report")]
    pub report_dir: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// What is under test and what each request carries, for the commands that take any target.
#[derive(Debug, Clone, Args)]
pub struct LoadTargetArgs {
    /// gateway, gateway-null, hyper-baseline or raw-kafka.
    #[arg(long, default_value = "gateway")]
    pub target: clickstream_loadtest::TargetKind,
    /// Events per /v1/batch request; without it, one event per request (analytics.js style).
    #[arg(long)]
    pub batch: Option<usize>,
    /// The tracker protocol requests speak: segment, posthog (posthog-js's /e/, or the server
    /// SDKs' /batch/ with --batch), snowplow (tp2 POSTs) or pixel (GET /v1/pixel, no --batch).
    #[arg(long, default_value = "segment")]
    pub protocol: clickstream_loadtest::Protocol,
}

impl LoadTargetArgs {
    pub fn mode(&self) -> clickstream_loadtest::Mode {
        self.batch.map_or(clickstream_loadtest::Mode::Single, |events| clickstream_loadtest::Mode::Batch { events })
    }

    /// The protocol, refusing a batch size the protocol cannot carry.
    pub fn protocol(&self) -> anyhow::Result<clickstream_loadtest::Protocol> {
        if self.batch.is_some() && !self.protocol.batches() {
            anyhow::bail!("--protocol {} sends one event per request: drop --batch", self.protocol.as_str());
        }
        Ok(self.protocol)
    }
}

#[derive(Debug, Clone, Args)]
pub struct LoadRunArgs {
    #[command(flatten)]
    pub common: LoadCommonArgs,
    #[command(flatten)]
    pub load: LoadTargetArgs,
    /// fixed, step or ramp.
    #[arg(long, default_value = "fixed")]
    pub profile: String,
    /// Requests per second (the first step's, or the ramp's start).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds: of the fixed run, of each step, or of the whole ramp.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Requests per second added at each step.
    #[arg(long, default_value_t = 1000.0)]
    pub step_rate: f64,
    /// Number of steps.
    #[arg(long, default_value_t = 5)]
    pub steps: u32,
    /// Requests per second at the end of the ramp.
    #[arg(long, default_value_t = 10_000.0)]
    pub ramp_to: f64,
    /// Search the highest rate meeting --slo-p99 instead of running the profile.
    #[arg(long, conflicts_with = "peak")]
    pub find_max: bool,
    /// Closed loop instead: each of --connections sends back to back for --duration, and the
    /// run reports the most the target answers (latency is then service time).
    #[arg(long)]
    pub peak: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LoadCompareArgs {
    #[command(flatten)]
    pub common: LoadCommonArgs,
    /// Events per /v1/batch request in the batched comparison.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// First rate the batched searches try, in requests per second.
    #[arg(long, default_value_t = 50.0)]
    pub batch_start_rate: f64,
    /// p99 SLO in ms for the batched searches: a batch waits for all its events' acks.
    #[arg(long, default_value_t = 50.0)]
    pub batch_slo_p99: f64,
    /// Closed-loop peak runs instead of SLO searches; the ratios are of peak throughput. The
    /// gateway's single events are then also offered open loop at 0.7 of their peak, for
    /// --peak-secs, and their p99 is compared with linger.ms + 5 ms.
    #[arg(long)]
    pub peak: bool,
    /// Seconds each peak run lasts.
    #[arg(long, default_value_t = 10.0)]
    pub peak_secs: f64,
    /// Keep the gateway's CPU shedding (`rate_limit.shed_lag_ms`) in peak runs. By default a
    /// peak run turns it off: its connections send again as soon as they are answered, so a
    /// shed request only turns capacity into 503s.
    #[arg(long, requires = "peak")]
    pub peak_keep_shedding: bool,
    /// Runs the whole comparison this many times, each target again in every round, and
    /// reports each ratio's median round (the lower middle for an even count) with every
    /// round's. On a shared machine one round's ratio moves by tens of percent.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
}

#[derive(Debug, Clone, Args)]
pub struct IdleConnectionsArgs {
    #[command(flatten)]
    pub common: LoadCommonArgs,
    /// gateway, gateway-null or hyper-baseline (started as its own process, so its RSS is its own).
    #[arg(long, default_value = "gateway")]
    pub target: clickstream_loadtest::TargetKind,
    /// Also measure hyper-baseline and print the ratio; --no-baseline to skip.
    #[arg(long)]
    pub no_baseline: bool,
    /// Seconds to let the target settle before each RSS reading.
    #[arg(long, default_value_t = 1.0)]
    pub settle_secs: f64,
}

#[derive(Debug, Clone, Args)]
pub struct OverloadArgs {
    #[command(flatten)]
    pub common: LoadCommonArgs,
    #[command(flatten)]
    pub load: LoadTargetArgs,
    /// The sustainable rate R in requests per second; without it, searched with --slo-p99.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds at 0.7×R before the overload.
    #[arg(long, default_value_t = 10.0)]
    pub baseline_secs: f64,
    /// Seconds at 2×R.
    #[arg(long, default_value_t = 10.0)]
    pub overload_secs: f64,
    /// Seconds at 0.7×R after the overload, in which recovery is looked for.
    #[arg(long, default_value_t = 30.0)]
    pub recovery_secs: f64,
    /// Connections the load generator may open during the scenario while requests wait for a
    /// free one, as a site's visitors each connect on their own; --connections or fewer keeps
    /// the pool fixed, and the excess then waits in the generator, out of the gateway's sight.
    #[arg(long, default_value_t = clickstream_loadtest::overload::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchSchedulerArgs {
    /// Rates to ask for, in requests per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,20000,40000")]
    pub rates: Vec<f64>,
    /// Seconds per rate.
    #[arg(long, default_value_t = 3.0)]
    pub secs: f64,
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchEnricherArgs {
    /// Enricher config (Kafka, guarantee, enrichments); the benchmark names its own topics.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Events in the input topic; each contender processes them all.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Partitions of the input and output topics (`topics.partitions` defaults to 6).
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Rounds of passthrough and enricher, in alternating order.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Simulated visitors the events are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub visitors: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The enricher's pipeline threads (`enricher.threads`; 0: the available cores, capped at
    /// the partitions). The passthrough always runs one.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Longest one contender may take over the input, in seconds.
    #[arg(long, default_value_t = 600)]
    pub phase_timeout_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// hyper-baseline or gateway-null.
    #[arg(long)]
    pub kind: clickstream_loadtest::ServerKind,
    #[arg(long)]
    pub listen: String,
    /// Gateway config (sources, limits) for gateway-null.
    #[arg(long)]
    pub config: Option<PathBuf>,
}
