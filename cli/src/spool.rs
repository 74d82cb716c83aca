//! `clickstream spool replay`: empties a spool directory that no gateway serves any more (a
//! scaled-down pod's volume, a crashed host's disk) into Kafka.

use std::time::Duration;

use crate::args::SpoolReplayArgs;

pub async fn replay(args: &SpoolReplayArgs) -> anyhow::Result<()> {
    let mut config = args.config.load()?;
    if let Some(dir) = &args.dir {
        config.spool.dir = dir.display().to_string();
    }
    let outcome = clickstream_gateway::sink::replay_directory(&config, Duration::from_secs(args.timeout_secs)).await?;
    let sent = outcome.found.saturating_sub(outcome.left);
    println!(
        "spool {}: {} records found, {sent} replayed into Kafka, {} left",
        config.spool.dir, outcome.found, outcome.left
    );
    if outcome.left > 0 {
        anyhow::bail!(
            "{} records are still in {} after {} s; run it again",
            outcome.left,
            config.spool.dir,
            args.timeout_secs
        );
    }
    Ok(())
}
