//! The clickstream gateway: a Segment-compatible HTTP tracking endpoint that answers only once
//! Kafka holds the events.

pub mod app;
mod assets;
mod body;
pub mod config;
pub mod console;
mod cors;
mod dedup;
mod edge;
pub mod endpoints;
pub mod error;
mod ingest;
mod lag;
pub mod metrics;
pub mod plan;
mod protect;
pub mod protocols;
pub mod record;
pub mod reload;
pub mod routing;
pub mod server;
pub mod sink;
pub mod sources;
pub mod spool;
pub mod suppression;
mod trace;

pub use app::{app, App, AppState, InvalidConfig};
pub use config::GatewayConfig;
pub use error::GatewayError;
pub use server::{start, GatewayHandle};
