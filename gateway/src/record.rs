//! The record: one message to produce, as routing builds it and as sinks and the spool take it.

use std::sync::Arc;

use clickstream_schema::{EventType, HEADER_EVENT_TYPE, HEADER_PROTOCOL, HEADER_SOURCE};

use crate::protocols::Protocol;

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

/// The Kafka headers of a record. The gateway writes only these three, so they are fields: the
/// source name is shared by every record of a request, and the event type and protocol are
/// static, so a record's headers cost no allocation of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeaders {
    /// `source`: the name of the source whose write key sent the event.
    pub source: Arc<str>,
    /// `event-type`: set on events, absent on dead letters.
    pub event_type: Option<EventType>,
    /// `protocol`: the wire protocol the event arrived in.
    pub protocol: Protocol,
}

impl RecordHeaders {
    pub fn new(source: Arc<str>, event_type: Option<EventType>, protocol: Protocol) -> Self {
        Self { source, event_type, protocol }
    }

    /// Name and value of each header, in the order they are produced.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((HEADER_SOURCE, &*self.source))
            .chain(self.event_type.map(|kind| (HEADER_EVENT_TYPE, kind.as_str())))
            .chain(std::iter::once((HEADER_PROTOCOL, self.protocol.as_str())))
    }

    pub fn len(&self) -> usize {
        2 + usize::from(self.event_type.is_some())
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Rebuilds the headers from name–value pairs (a spooled record). Names the gateway does
    /// not write are dropped; an unknown event type drops only that header. A record spooled
    /// before the protocol header existed came in by the Segment protocol, the only one then.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut headers = Self { source: Arc::from(""), event_type: None, protocol: Protocol::Segment };
        for (name, value) in pairs {
            match name {
                HEADER_SOURCE => headers.source = Arc::from(value),
                HEADER_EVENT_TYPE => headers.event_type = EventType::parse(value),
                HEADER_PROTOCOL => headers.protocol = Protocol::parse(value).unwrap_or(Protocol::Segment),
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
    fn pairs_round_trip_and_dead_letters_carry_no_event_type() {
        let event = RecordHeaders::new("web".into(), Some(EventType::Track), Protocol::PostHog);
        let pairs: Vec<_> = event.pairs().collect();
        assert_eq!(pairs, [("source", "web"), ("event-type", "track"), ("protocol", "posthog")]);
        assert_eq!(RecordHeaders::from_pairs(pairs), event);
        let letter = RecordHeaders::new("web".into(), None, Protocol::Segment);
        assert_eq!(letter.pairs().collect::<Vec<_>>(), [("source", "web"), ("protocol", "segment")]);
        assert_eq!(letter.len(), letter.pairs().count());
        assert_eq!(RecordHeaders::from_pairs([("source", "web"), ("x-other", "1")]), letter, "spooled before 0.2");
    }
}
