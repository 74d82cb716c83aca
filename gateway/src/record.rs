//! The record: one message to produce, as routing builds it and as sinks and the spool take it.

use std::borrow::Cow;

/// One message to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub key: Option<String>,
    /// A partition chosen by routing (random keys, hot-key overflow); `None` lets the
    /// producer's partitioner hash the key.
    pub partition: Option<i32>,
    pub payload: Vec<u8>,
    /// Header name and value; names are usually static, so they are borrowed when they can be.
    pub headers: Vec<(Cow<'static, str>, String)>,
}
