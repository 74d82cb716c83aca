//! Sinks without Kafka: one that keeps records for unit tests, one that drops them for benchmarks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{EventSink, Record, SinkError, SinkHealth};

/// Keeps every delivered record; can be switched to unavailable to exercise 503 paths.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<Record>>,
    down: AtomicBool,
}

impl MemorySink {
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl EventSink for MemorySink {
    fn deliver(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if let SinkHealth::Unavailable(reason) = self.health() {
                return Err(SinkError::Unavailable(reason));
            }
            if let Ok(mut kept) = self.records.lock() {
                kept.extend(records);
            }
            Ok(())
        })
    }

    fn health(&self) -> SinkHealth {
        if self.down.load(Ordering::SeqCst) {
            SinkHealth::Unavailable("memory sink switched down".to_owned())
        } else {
            SinkHealth::Ready
        }
    }
}

/// Accepts and discards everything: the gateway's ceiling without Kafka, for benchmarks.
#[derive(Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn deliver(&self, _records: Vec<Record>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    fn health(&self) -> SinkHealth {
        SinkHealth::Ready
    }
}
