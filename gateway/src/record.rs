//! The record: one message to produce, as routing builds it and as sinks and the spool take it.

use std::sync::Arc;

use clickstream_schema::{EventType, HEADER_EVENT_TYPE, HEADER_SOURCE};

/// One message to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub key: Option<String>,
    /// A partition chosen by routing (random keys, hot-key overflow); `None` lets the
    /// producer's partitioner hash the key.
    pub partition: Option<i32>,
    pub payload: Vec<u8>,
    pub headers: RecordHeaders,
}

/// The Kafka headers of a record. The gateway writes only these two, so they are fields: the
/// source name is shared by every record of a request and the event type is static, and a
/// record's headers cost no allocation of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeaders {
    /// `source`: the name of the source whose write key sent the event.
    pub source: Arc<str>,
    /// `event-type`: set on events, absent on dead letters.
    pub event_type: Option<EventType>,
}

impl RecordHeaders {
    pub fn new(source: Arc<str>, event_type: Option<EventType>) -> Self {
        Self { source, event_type }
    }

    /// Name and value of each header, in the order they are produced.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((HEADER_SOURCE, &*self.source))
            .chain(self.event_type.map(|kind| (HEADER_EVENT_TYPE, kind.as_str())))
    }

    pub fn len(&self) -> usize {
        1 + usize::from(self.event_type.is_some())
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Rebuilds the headers from name–value pairs (a spooled record). Names the gateway does
    /// not write are dropped; an unknown event type drops only that header.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut headers = Self { source: Arc::from(""), event_type: None };
        for (name, value) in pairs {
            match name {
                HEADER_SOURCE => headers.source = Arc::from(value),
                HEADER_EVENT_TYPE => headers.event_type = EventType::parse(value),
                _ => {}
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_dead_letters_carry_only_the_source() {
        let event = RecordHeaders::new("web".into(), Some(EventType::Track));
        let pairs: Vec<_> = event.pairs().collect();
        assert_eq!(pairs, [("source", "web"), ("event-type", "track")]);
        assert_eq!(RecordHeaders::from_pairs(pairs), event);
        let letter = RecordHeaders::new("web".into(), None);
        assert_eq!(letter.pairs().collect::<Vec<_>>(), [("source", "web")]);
        assert_eq!(RecordHeaders::from_pairs([("source", "web"), ("x-other", "1")]), letter);
    }
}
