//! What a pipeline thread reads back when partitions are assigned to it: the checkpoint at the
//! tail of each input partition's enriched output, and the last window watermark written for
//! each repartition partition, all at once.

use std::collections::BTreeMap;
use std::time::Duration;

use super::checkpoint::{read_tail_checkpoint, read_tail_watermark, Checkpoint};
use super::{isolation, PipelineError};
use crate::config::{EnricherConfig, Guarantee};

/// The tails read for one assignment.
#[derive(Debug, Default)]
pub struct Tails {
    /// Per input partition: the checkpoint of its enriched output (none in at-least-once mode).
    pub checkpoints: BTreeMap<i32, Option<Checkpoint>>,
    /// Per repartition partition: the last watermark in the window watermark topic.
    pub watermarks: BTreeMap<i32, Option<i64>>,
}

/// Reads every tail, each with its own client. Each read waits for its partition to stay quiet
/// for a moment, so the reads run at once: one after another, a new instance took about 0.65 s
/// per partition before serving.
pub fn read_tails(
    config: &EnricherConfig,
    input_partitions: &[i32],
    repartition_partitions: &[i32],
    timeout: Duration,
) -> Result<Tails, PipelineError> {
    let guarantee = config.enricher.guarantee;
    let isolation = isolation(guarantee);
    let kafka = &config.kafka;
    let topics = &config.enricher.topics;
    let checkpoints_wanted = if guarantee == Guarantee::AtLeastOnce { &[][..] } else { input_partitions };
    std::thread::scope(|scope| {
        let checkpoint_readers: Vec<_> = checkpoints_wanted
            .iter()
            .map(|p| (*p, scope.spawn(move || read_tail_checkpoint(kafka, &topics.enriched, *p, isolation, timeout))))
            .collect();
        let watermark_readers: Vec<_> = repartition_partitions
            .iter()
            .map(|p| {
                let reader = move || read_tail_watermark(kafka, &topics.window_watermarks, *p, isolation, timeout);
                (*p, scope.spawn(reader))
            })
            .collect();
        let mut tails = Tails::default();
        for (partition, reader) in checkpoint_readers {
            let checkpoint = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            tails.checkpoints.insert(partition, checkpoint);
        }
        for partition in input_partitions {
            tails.checkpoints.entry(*partition).or_default();
        }
        for (partition, reader) in watermark_readers {
            let watermark = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            tails.watermarks.insert(partition, watermark);
        }
        Ok(tails)
    })
}
