//! The enricher service: joins clicks with the product table, adds user-agent, referrer,
//! campaign, GeoIP and session fields, computes windowed product activity, and writes its
//! outputs at least once or exactly once.

pub mod admin;
pub mod config;
pub mod enrich;
pub mod metrics;
pub mod pipeline;
pub mod process;
pub mod products;
pub mod service;
pub mod session;
pub mod window;

pub use config::{EnricherConfig, Guarantee};
pub use service::{start, start_with_metrics, EnricherHandle, StartError};
