//! Plumbing every clickstream service shares: layered config, Kafka clients and topic
//! provisioning, the embedded mock broker, tracing setup, OpenTelemetry metrics and traces, and the admin listener.

pub mod admin;
pub mod broker;
pub mod config;
pub mod kafka;
pub mod kafka_stats;
pub mod logging;
pub mod producer;
pub mod recent;
pub mod telemetry;
pub mod topics;
