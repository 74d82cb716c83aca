//! Where accepted events go. Routing has already chosen each record's topic; a sink only
//! delivers, and answers once the records are safe.

mod completion;
mod durable;
mod kafka;
mod memory;
mod probe;
mod replay;
mod shedding;
mod watch;

use std::time::Duration;

use futures::future::BoxFuture;

pub use durable::DurableSink;
pub use kafka::KafkaSink;
pub use memory::{MemorySink, NullSink};
pub use replay::{replay_directory, ReplayError, ReplayOutcome};

// Sinks take records; the type lives apart so the spool can store them without the sinks.
pub use crate::record::Record;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The records are not safe; the client should retry.
    #[error("{0}")]
    Unavailable(String),
    /// Kafka refused some records for good (too large); retrying the same events cannot help.
    #[error("{0}")]
    Rejected(String),
}

/// Whether a sink can take records, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkHealth {
    Ready,
    /// Records are accepted, but not the usual way (for example, into the spool).
    Degraded(String),
    /// Records are refused.
    Unavailable(String),
}

/// A destination for records.
pub trait EventSink: Send + Sync + std::fmt::Debug + 'static {
    /// Resolves once every record is safe, or with an error if any is not.
    fn deliver(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>>;

    fn health(&self) -> SinkHealth;

    /// Set when a new request should get a fast 503 rather than queue: how long it would
    /// wait behind the events Kafka is still draining (see `delivery.shed_wait_ms`).
    fn shed(&self) -> Option<Duration> {
        None
    }

    /// Records Kafka refused for good since start (too large), which were dropped.
    fn rejected_by_kafka(&self) -> u64 {
        0
    }

    /// Records answered under `ack = none` that Kafka then failed to take, sent to the spool
    /// since start.
    fn spooled_after_answer(&self) -> u64 {
        0
    }

    /// What waits in the spool, for sinks that have one.
    fn spool_stats(&self) -> Option<crate::spool::SpoolStats> {
        None
    }

    /// Makes what is in flight safe before the process exits, by `deadline`: delivered, or
    /// on disk where the sink has a spool.
    fn shutdown(&self, deadline: tokio::time::Instant) -> BoxFuture<'_, ()> {
        let _ = deadline;
        Box::pin(async {})
    }
}
