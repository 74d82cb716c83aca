//! The open-loop load generator for capacity planning: requests fire at their intended times
//! and latency counts from then (no coordinated omission), the max rate under a latency SLO
//! is searched, events are matched end to end through Kafka, and the gateway is compared
//! with a bare hyper server and raw rdkafka in the same run.

mod bitset;
pub mod capacity;
pub mod clock;
pub mod command;
pub mod compare;
pub mod cpu;
pub mod e2e;
pub mod enricher_bench;
pub mod headroom;
mod http1;
pub mod idle;
pub mod overload;
pub mod payload;
pub mod peak;
pub mod plan;
pub mod pool;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod search;
pub mod servers;
pub mod split;
pub mod stats;
pub mod target;
pub mod transport;

pub use command::{bench_scheduler, run_command, Load, Settings};
pub use compare::{compare_command, CompareOptions};
pub use e2e::{E2eOptions, E2eResult, Matcher};
pub use overload::{OverloadOptions, OverloadResult};
pub use payload::catalog::Catalog;
pub use payload::{Mode, Protocol};
pub use peak::PeakPool;
pub use plan::{Phase, Profile};
pub use pool::Pool;
pub use progress::Progress;
pub use runner::{run, run_on, PhaseResult, RunOptions, RunOutcome, Session};
pub use scenarios::{idle_command, overload_command};
pub use search::{find_max, FindMax, SearchOptions, Slo};
pub use servers::ServerKind;
pub use target::{Target, TargetKind, TargetSpec};
