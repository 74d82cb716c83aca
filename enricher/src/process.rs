//! Turning one raw record into its outputs: the enriched event, the product activity for the
//! windows, or a dead letter. Pure apart from the per-partition state it is handed.

use clickstream_schema::{ConsumerDeadLetter, Event, StoredEvent};
use serde_json::Value;

use crate::config::EnricherSettings;
use crate::enrich::Enrichers;
use crate::session::{RecentMessages, Sessions};
use crate::window::{Activity, ActivitySource};

/// A record read from an input topic.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub topic: &'a str,
    /// Index of `topic` in the enricher's input list.
    pub topic_index: usize,
    pub partition: i32,
    pub offset: i64,
    pub payload: Option<&'a [u8]>,
    /// Kafka record timestamp, the event time of last resort.
    pub timestamp_ms: Option<i64>,
}

/// What a record becomes.
#[derive(Debug)]
pub enum Processed {
    Enriched {
        payload: Vec<u8>,
        activities: Vec<Activity<'static>>,
        join_misses: usize,
    },
    /// Its `messageId` was seen within the dedup window.
    Duplicate,
    Dead(ConsumerDeadLetter),
}

/// State kept per input partition: sessions and recently seen message ids, plus a buffer
/// reused from event to event.
#[derive(Debug)]
pub struct PartitionState {
    pub sessions: Sessions,
    pub recent: RecentMessages,
    enrichment: Vec<u8>,
}

impl PartitionState {
    pub fn new(settings: &EnricherSettings) -> Self {
        Self {
            sessions: Sessions::new(&settings.sessions),
            recent: RecentMessages::new(&settings.dedup),
            enrichment: Vec::new(),
        }
    }
}

pub fn process(enrichers: &Enrichers, state: &mut PartitionState, input: Input<'_>) -> Processed {
    let dead = |kind: &str, reason: String, payload: Value| {
        Processed::Dead(ConsumerDeadLetter {
            reason_kind: kind.to_owned(),
            reason,
            topic: input.topic.to_owned(),
            partition: input.partition,
            offset: input.offset,
            payload,
            payload_truncated: false,
        })
    };
    let Some(bytes) = input.payload.filter(|b| !b.is_empty()) else {
        return dead("empty_record", "record has no value".to_owned(), Value::Null);
    };
    let PartitionState { sessions, recent, enrichment } = state;
    let event = match StoredEvent::parse(bytes) {
        Ok(event) => event,
        Err(error) => {
            let payload = serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
            return dead(error.kind(), error.to_string(), payload);
        }
    };
    if let Some(id) = event.message_id() {
        if !recent.first_sighting(&id) {
            return Processed::Duplicate;
        }
    }
    let Some(visitor) = event.visitor_key() else {
        return dead("missing_identity", "event has neither anonymousId nor userId".to_owned(), raw_json(bytes));
    };
    let event_ms = event
        .timestamp()
        .or(event.received_at())
        .map(|t| t.timestamp_millis())
        .or(input.timestamp_ms)
        .unwrap_or_default();
    let session = sessions.observe(&visitor, event_ms, (input.topic_index, input.offset));
    enrichment.clear();
    let report = enrichers.enrich(&event, event_ms, &session, enrichment);
    let name = event.str("event").unwrap_or(event.kind().as_str().into());
    let activities = report
        .line_items
        .into_iter()
        .zip(0..)
        .map(|(item, index)| Activity {
            product_id: item.product_id.into(),
            event: name.to_string().into(),
            event_ms,
            quantity: item.quantity,
            revenue: item.revenue,
            source: Some(ActivitySource {
                topic: input.topic.to_owned().into(),
                partition: input.partition,
                offset: input.offset,
                item: index,
            }),
        })
        .collect();
    let payload = enriched_payload(bytes, &event, enrichment, report.masked_ip.as_deref());
    Processed::Enriched { payload, activities, join_misses: report.join_misses }
}

/// The stored bytes with `enrichment` appended and `context.ip` as enriching left it; the
/// rest is copied, not rebuilt. An event that already has an `enrichment` member is written
/// whole, with the new one in its place.
fn enriched_payload(stored: &[u8], event: &StoredEvent<'_>, enrichment: &[u8], masked_ip: Option<&str>) -> Vec<u8> {
    let stored_ip = event.object("context").and_then(|c| c.get("ip")).and_then(|ip| ip.as_str());
    event
        .append_member("enrichment", enrichment, masked_ip.or(stored_ip.as_deref()))
        .unwrap_or_else(|| whole_event(stored, enrichment, masked_ip))
}

/// The owned event written whole, as the enricher wrote every event before it learned to
/// append: `context` present (empty when the event had none), the IP masked.
fn whole_event(stored: &[u8], enrichment: &[u8], masked_ip: Option<&str>) -> Vec<u8> {
    let Ok(mut event) = Event::from_slice(stored) else { return stored.to_vec() };
    let context = event.context_mut();
    if let Some(ip) = masked_ip {
        context.insert("ip".into(), Value::String(ip.to_owned()));
    }
    let enrichment = serde_json::from_slice(enrichment).unwrap_or(Value::Null);
    event.extra.insert("enrichment".into(), enrichment);
    event.to_json()
}

/// The dead letter written in place of an enriched record the producer refused as larger than
/// its `message.max.bytes`: an output that cannot be written would stop its partition.
pub fn too_large_letter(
    topic: &str,
    partition: i32,
    offset: i64,
    stored: &[u8],
    enriched: usize,
) -> ConsumerDeadLetter {
    ConsumerDeadLetter {
        reason_kind: "enriched_too_large".to_owned(),
        reason: format!("the enriched record, {enriched} bytes, is over the producer's message.max.bytes"),
        topic: topic.to_owned(),
        partition,
        offset,
        payload: raw_json(stored),
        payload_truncated: false,
    }
}

fn raw_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpSettings;
    use crate::products::ProductTable;

    fn input(payload: &[u8], offset: i64) -> Input<'_> {
        Input { topic: "events.raw", topic_index: 0, partition: 2, offset, payload: Some(payload), timestamp_ms: None }
    }

    #[test]
    fn enriches_dedups_and_dead_letters() {
        let enrichers = Enrichers::new(ProductTable::default(), IpSettings::default()).expect("enrichers");
        let mut state = PartitionState::new(&EnricherSettings::default());
        let good = br#"{"type":"track","event":"Product Viewed","messageId":"m1","anonymousId":"a","timestamp":"2026-01-01T00:00:00Z","properties":{"product_id":"p1"}}"#;
        match process(&enrichers, &mut state, input(good, 7)) {
            Processed::Enriched { payload, activities, join_misses } => {
                let value: Value = serde_json::from_slice(&payload).expect("json");
                assert_eq!(value["enrichment"]["session"]["sequence"], 1);
                assert_eq!(activities[0].event, "Product Viewed");
                assert_eq!(activities[0].event_ms, 1_767_225_600_000);
                assert_eq!(join_misses, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(process(&enrichers, &mut state, input(good, 8)), Processed::Duplicate));
        match process(&enrichers, &mut state, input(b"{not json", 9)) {
            Processed::Dead(letter) => {
                assert_eq!((letter.reason_kind.as_str(), letter.offset, letter.partition), ("invalid_json", 9, 2));
                assert_eq!(letter.payload, Value::String("{not json".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    /// The enricher copies what it does not change: key order and number formatting as stored,
    /// and, parsed, the same event as writing it whole would give.
    #[test]
    fn untouched_fields_keep_their_bytes() {
        let enrichers = Enrichers::new(ProductTable::default(), IpSettings::default()).expect("enrichers");
        let mut state = PartitionState::new(&EnricherSettings::default());
        let stored = br#"{"userId":"u1","type":"track","event":"Cart Viewed","messageId":"m9","properties":{"total":10.50,"n":1e2},"context":{"ip":"203.0.113.7","locale":"en"},"timestamp":"2026-01-01T00:00:00.000Z"}"#;
        let Processed::Enriched { payload, .. } = process(&enrichers, &mut state, input(stored, 1)) else {
            panic!("not enriched")
        };
        let text = String::from_utf8(payload.clone()).expect("utf-8");
        assert!(text.starts_with(r#"{"userId":"u1","type":"track","event":"Cart Viewed""#), "{text}");
        assert!(text.contains(r#""properties":{"total":10.50,"n":1e2}"#), "{text}");
        let spliced: Value = serde_json::from_slice(&payload).expect("json");
        let mut whole = Event::from_slice(stored).expect("event");
        whole.context_mut().insert("ip".into(), spliced["context"]["ip"].clone());
        whole.extra.insert("enrichment".into(), spliced["enrichment"].clone());
        let whole: Value = serde_json::from_slice(&whole.to_json()).expect("json");
        assert_eq!(spliced, whole);
        assert_ne!(spliced["context"]["ip"], "203.0.113.7", "the IP is masked by default");
    }
}
