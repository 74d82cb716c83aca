//! Config sections for delivery guarantees and protection: ack mode, disk spool, dedup and
//! rate limits.

use serde::{Deserialize, Serialize};

/// When the gateway answers a client, and so what a 200 promises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// After Kafka's delivery report, or after the spool write when Kafka cannot take the
    /// events in time. Nothing acknowledged is lost, even on a crash.
    #[default]
    Kafka,
    /// After the spool write, always; a background task moves the spool into Kafka.
    Spool,
    /// After the events are queued in the producer: the lowest latency at moderate load, and a
    /// crash loses what was queued. Not cheaper under heavy load: each request is answered on
    /// its own wake-up, where `kafka` answers requests in groups as delivery reports arrive.
    /// One task follows every answered batch and spools what Kafka then fails to take.
    None,
}

/// How the gateway decides that an event is safe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// When a 200 is sent: `kafka`, `spool` or `none` (see docs/delivery-guarantees.md).
    pub ack: AckMode,
    /// How long a request waits for Kafka's delivery reports before its undelivered events
    /// are also written to the spool, in milliseconds (the producer may still deliver them:
    /// repeats, which consumers drop by `messageId`).
    /// With the spool off, `producer.message_timeout_ms` bounds the wait before a 503.
    pub enqueue_deadline_ms: u64,
    /// Sheds new requests with a fast 503 and `Retry-After` while the events already waiting
    /// for Kafka would take longer than this to drain at the recent delivery rate, in
    /// milliseconds (0: never). Under overload, clients are told at once instead of waiting
    /// out `enqueue_deadline_ms` and having their events spooled. Not applied with
    /// `ack = spool` or while Kafka is unreachable, when the spool takes the events.
    pub shed_wait_ms: u64,
    /// How often the gateway checks that Kafka answers, in milliseconds: an unreachable
    /// cluster sends events to the spool at once instead of after their timeout. Records
    /// confirmed since the last check are answer enough; only without them is a metadata
    /// request sent, so that it never holds back the produce responses behind it. With
    /// `acks=0` records are confirmed without any broker answer, so every check asks.
    pub kafka_health_interval_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            ack: AckMode::Kafka,
            enqueue_deadline_ms: DEFAULT_ENQUEUE_DEADLINE_MS,
            shed_wait_ms: DEFAULT_SHED_WAIT_MS,
            kafka_health_interval_ms: DEFAULT_KAFKA_HEALTH_INTERVAL_MS,
        }
    }
}

/// A quarter of the enqueue deadline: past it, a request would likely miss the deadline.
pub const DEFAULT_SHED_WAIT_MS: u64 = 500;

pub const DEFAULT_ENQUEUE_DEADLINE_MS: u64 = 2_000;

pub const DEFAULT_KAFKA_HEALTH_INTERVAL_MS: u64 = 1_000;

/// When spool writes reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// fsync before answering each request.
    Request,
    /// Group commit: one fsync every `fsync_interval_ms` covers every request written since;
    /// each request still waits for the fsync that covers it.
    #[default]
    Interval,
}

/// The local disk spool that holds events while Kafka cannot take them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Whether to spool at all. Off: while Kafka cannot take events, requests get 503.
    pub enabled: bool,
    /// Directory of the segment files. It must survive a restart for the spool to.
    pub dir: String,
    /// Largest total size of the spool, in bytes; past it, requests get 503.
    pub max_bytes: u64,
    /// Size at which a segment file is closed and a new one started, in bytes.
    pub segment_bytes: u64,
    /// `request` (fsync per request) or `interval` (group commit).
    pub fsync: FsyncPolicy,
    /// Group-commit interval for `fsync = "interval"`, in milliseconds.
    pub fsync_interval_ms: u64,
    /// Records sent to Kafka per replay step.
    pub replay_batch: usize,
    /// Replay steps in flight to Kafka at once. The spool's commit offset advances only past
    /// a step whose records, and every earlier step's, Kafka has confirmed; when one fails,
    /// replay resumes from its first record. 1 sends one step at a time.
    pub replay_in_flight: usize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "spool".to_owned(),
            max_bytes: 1 << 30,
            segment_bytes: 16 << 20,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 5,
            replay_batch: 1_000,
            replay_in_flight: DEFAULT_REPLAY_IN_FLIGHT,
        }
    }
}

/// A quarter of a second of waiting for a CPU: well past what a busy but healthy runtime
/// shows, and well before requests miss the 2 s `delivery.enqueue_deadline_ms`.
pub const DEFAULT_SHED_LAG_MS: u64 = 250;

/// Enough steps to keep the producer busy while each waits for its reports; 8 took replay from
/// 0.37x to 0.76x the direct path (docs/performance.md).
pub const DEFAULT_REPLAY_IN_FLIGHT: usize = 8;

/// Drops retried duplicates before Kafka, by `messageId` per source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Whether to drop events whose `messageId` the same source sent recently.
    pub enabled: bool,
    /// How long a delivered `messageId` is remembered, in seconds.
    pub ttl_secs: u64,
    /// Most `messageId`s remembered, in a table of 8 bytes per id, allocated at start and
    /// resident once the first few thousand ids have arrived.
    /// An id is forgotten once 16 newer ones share its bucket, so nearly all of the newest
    /// half of this many are remembered, and about half of those this many back.
    pub capacity: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self { enabled: true, ttl_secs: 600, capacity: 1_000_000 }
    }
}

/// Request rate limits and load shedding. A rate of 0 turns that limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second allowed per write key (0: no limit).
    pub per_write_key_per_sec: u32,
    /// Burst allowed per write key above its rate.
    pub per_write_key_burst: u32,
    /// Requests per second allowed per client IP (0: no limit).
    pub per_ip_per_sec: u32,
    /// Burst allowed per client IP above its rate.
    pub per_ip_burst: u32,
    /// Requests processed at once; more are shed with 503 before they can grow memory.
    pub max_in_flight: usize,
    /// Sheds new requests with a fast 503 `cpu_overloaded` and `Retry-After` while the
    /// gateway's runtime runs tasks later than this, in milliseconds (0: never). That lag is
    /// how long a request waits for a CPU before its handler starts: past it, the CPU is
    /// saturated, and accepting more would only make every request slower until events miss
    /// `delivery.enqueue_deadline_ms` and are spooled.
    pub shed_lag_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_write_key_per_sec: 0,
            per_write_key_burst: 1_000,
            per_ip_per_sec: 0,
            per_ip_burst: 200,
            max_in_flight: 4_096,
            shed_lag_ms: DEFAULT_SHED_LAG_MS,
        }
    }
}
