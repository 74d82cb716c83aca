//! Where accepted events go. Routing has already chosen each record's topic; a sink only
//! delivers, and answers once the records are safe.

mod kafka;
mod memory;

use std::borrow::Cow;

use futures::future::BoxFuture;

pub use kafka::KafkaSink;
pub use memory::{MemorySink, NullSink};

/// One message to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    /// Header name and value; names are usually static, so they are borrowed when they can be.
    pub headers: Vec<(Cow<'static, str>, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The records are not safe; the client should retry.
    #[error("{0}")]
    Unavailable(String),
}

/// A destination for records.
pub trait EventSink: Send + Sync + std::fmt::Debug + 'static {
    /// Resolves once every record is safe, or with an error if any is not.
    fn deliver(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>>;

    /// Why the sink cannot take records right now, or `None` when it can.
    fn unavailable_reason(&self) -> Option<String>;
}
