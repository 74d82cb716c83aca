//! `clickstream gateway`: runs the gateway against a Kafka cluster until Ctrl-C or SIGTERM, and
//! reloads its sources, routing rules and tracking plans on SIGHUP.

use clickstream_gateway::reload::Reloader;

use crate::args::ConfigArgs;

pub async fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    crate::commands::without_transparent_huge_pages();
    let mut gateway = clickstream_gateway::start(config).await?;
    reload_on_sighup(args.clone(), gateway.reloader());
    let stop = gateway.take_stop();
    tokio::spawn(async move {
        crate::commands::shutdown_signal().await;
        tracing::info!("shutting down");
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    });
    gateway.wait().await;
    Ok(())
}

/// On SIGHUP, reads the config again and reloads sources and routing rules; a config that does not
/// load or check is refused, logged, and the running one kept.
fn reload_on_sighup(args: ConfigArgs, reloader: Reloader) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reloading is off");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading sources and routing rules");
            let result = match args.load() {
                Ok(config) => reloader.reload(config).await.map_err(anyhow::Error::from),
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::error!("config reload refused, keeping the running config: {error:#}");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (args, reloader);
}
