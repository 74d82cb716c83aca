//! Consumer-group membership: the consumer's context, which hands assignments and revocations
//! to the pipeline's state, and how a commit makes its outputs safe.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use super::core::Core;
use super::PipelineError;

/// The consumer's context: the pipeline state, reachable from rebalance callbacks.
#[derive(Debug)]
pub struct GroupContext {
    pub core: Mutex<Core>,
    /// Set when a callback failed; the poll loop then rebuilds the pipeline.
    pub failure: Mutex<Option<PipelineError>>,
    /// Set before the consumer is dropped after an error, so the final revoke commits nothing.
    pub poisoned: std::sync::atomic::AtomicBool,
    /// Where the consumer's librdkafka statistics go (lag per partition, for the admin port).
    pub stats: std::sync::Arc<clickstream_platform::kafka_stats::KafkaStatsCell>,
    /// The pipeline thread's slot in `stats`.
    pub stats_slot: usize,
}

pub type GroupConsumer = BaseConsumer<GroupContext>;

/// How a commit makes sure the outputs behind it have landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// A periodic commit: note the progress now, and commit it once Kafka has answered every
    /// output sent before it, while processing goes on.
    WhenDelivered,
    /// Before partitions change hands or the process stops: wait for the outputs, then commit.
    Wait,
}

/// Longest wait for in-flight outputs before giving partitions up or reading output tails.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.stats.record_slot(self.stats_slot, &statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let mut core = self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let placed = core.place(consumer, tpl);
                let assigned =
                    if placed.is_ok() { consumer.assign(tpl) } else { consumer.assign(&TopicPartitionList::new()) };
                placed.and(assigned.map_err(PipelineError::Kafka))
            }
            _ => {
                let revoked = core.revoke(consumer, self.poisoned.load(std::sync::atomic::Ordering::Relaxed));
                revoked.and(consumer.unassign().map_err(PipelineError::Kafka))
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "rebalance");
            *self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
        }
    }
}
