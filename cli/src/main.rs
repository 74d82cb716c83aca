//! The `clickstream` command: parses arguments and hands each subcommand to its module.

mod args;
mod cdc;
mod commands;
mod demo;
mod dev;
mod enricher;
mod gateway;
mod loadtest;
mod plan;
mod routing;
mod shop;
mod spool;
mod tail;

use clap::Parser as _;

// The enricher and the gateway allocate per event (JSON values, headers, keys); glibc's
// malloc took about a third of the enricher's CPU in profiles, mimalloc far less. The
// workspace builds mimalloc with `override`, so librdkafka's C allocations use it as well.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = args::Cli::parse();
    clickstream_platform::logging::init_logging(cli.json_logs);
    match cli.command {
        args::Command::Gateway(config) => gateway::run(&config).await,
        args::Command::Topics { action: args::TopicsAction::Apply(apply) } => commands::topics_apply(&apply).await,
        args::Command::Broker(broker) => commands::broker(&broker).await,
        args::Command::Dev(dev) => dev::run(&dev).await,
        args::Command::Routing { action: args::RoutingAction::Check(check) } => routing::check(&check).await,
        args::Command::Plan { action: args::PlanCommand::Check(check) } => plan::check(&check),
        args::Command::Config { action: args::ConfigAction::Keys { markdown } } => {
            commands::config_keys(markdown);
            Ok(())
        }
        args::Command::Loadtest(loadtest) => loadtest::run(&loadtest).await,
        args::Command::Enricher(config) => enricher::run(&config).await,
        args::Command::Cdc(config) => cdc::run(&config).await,
        args::Command::Tail(tail) => tail::run(&tail).await,
        args::Command::Spool { action: args::SpoolAction::Replay(replay) } => spool::replay(&replay).await,
        args::Command::Products { action: args::ProductsAction::Load { file, valid_from, config } } => {
            enricher::products_load(&file, valid_from.as_deref(), &config).await
        }
    }
}
