//! Plumbing every clickstream service shares: layered config, Kafka clients and topic
//! provisioning, the embedded mock broker, and tracing setup.

pub mod broker;
pub mod config;
pub mod kafka;
pub mod telemetry;
