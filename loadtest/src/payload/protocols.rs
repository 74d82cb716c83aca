//! The simulated visitors' events in the other trackers' wire forms: PostHog's capture API,
//! Snowplow's tracker protocol (tp2 POST) and Segment's pixel, each as its own client sends
//! it. The events are made Segment-shaped first and re-expressed here, so every protocol
//! carries the same visits; the message id travels in each protocol's event id field.

use std::borrow::Cow;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::EncodedEvent;

/// Which tracker's wire format requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// analytics.js and the Segment server SDKs.
    #[default]
    Segment,
    /// posthog-js (`POST /e/`, one event) and PostHog's server SDKs (`POST /batch/`).
    Posthog,
    /// Snowplow's trackers: `POST /com.snowplowanalytics.snowplow/tp2`, `payload_data`.
    Snowplow,
    /// Segment's pixel API: `GET /v1/pixel/{type}?data=<base64 JSON>`, one event each.
    Pixel,
}

pub const PROTOCOLS: [Protocol; 4] = [Protocol::Segment, Protocol::Posthog, Protocol::Snowplow, Protocol::Pixel];

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Segment => "segment",
            Self::Posthog => "posthog",
            Self::Snowplow => "snowplow",
            Self::Pixel => "pixel",
        }
    }

    /// Whether a request may carry more than one event.
    pub fn batches(self) -> bool {
        self != Self::Pixel
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        PROTOCOLS
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| format!("unknown protocol `{text}`: use segment, posthog, snowplow or pixel"))
    }
}

/// A request body in `protocol`'s form, with its path and content type.
#[derive(Debug)]
pub struct ProtocolBody {
    pub path: Cow<'static, str>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const POSTHOG_LIB_VERSION: &str = "1.200.0";
const SNOWPLOW_TRACKER: &str = "js-4.1.0";
const SNOWPLOW_TP2: &str = "/com.snowplowanalytics.snowplow/tp2";

/// The body for PostHog or Snowplow: `events` (Segment JSON) re-expressed. `batched` says
/// whether the Segment request would have been a batch (server SDK) or one event (browser).
pub fn body(
    protocol: Protocol,
    events: &[EncodedEvent],
    write_key: &str,
    sent_at_ms: i64,
    batched: bool,
) -> ProtocolBody {
    let parsed: Vec<Value> = events.iter().map(|e| serde_json::from_slice(&e.json).unwrap_or(Value::Null)).collect();
    match protocol {
        Protocol::Posthog if batched => {
            let batch: Vec<Value> = parsed.iter().map(|e| posthog_event(e, None)).collect();
            let body = json!({"api_key": write_key, "batch": batch});
            ProtocolBody { path: "/batch/".into(), content_type: "application/json", body: to_vec(&body) }
        }
        Protocol::Posthog => {
            let event = parsed.first().map_or(Value::Null, |e| posthog_event(e, Some(write_key)));
            let path = format!("/e/?ver={POSTHOG_LIB_VERSION}");
            ProtocolBody { path: path.into(), content_type: "application/json", body: to_vec(&event) }
        }
        Protocol::Snowplow => {
            let data: Vec<Value> = parsed.iter().map(|e| snowplow_event(e, write_key, sent_at_ms)).collect();
            let body =
                json!({"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": data});
            ProtocolBody {
                path: SNOWPLOW_TP2.into(),
                content_type: "application/json; charset=UTF-8",
                body: to_vec(&body),
            }
        }
        Protocol::Segment | Protocol::Pixel => {
            unreachable!("Segment and pixel requests are built from the Segment JSON directly")
        }
    }
}

/// The pixel's path for one event's JSON (which carries its `writeKey`).
pub fn pixel_path(kind: &str, json: &[u8]) -> String {
    let data = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    format!("/v1/pixel/{kind}?data={data}")
}

fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| unreachable!("writing JSON to a Vec cannot fail: {e}"))
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// One event as posthog-js captures it; `token` is set for the browser's single-event form.
fn posthog_event(event: &Value, token: Option<&str>) -> Value {
    let anonymous_id = text(event, "/anonymousId").unwrap_or_default();
    let user_id = text(event, "/userId");
    let mut properties = event.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let page = |field: &str| text(event, &format!("/context/page/{field}"));
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            properties.insert(key.to_owned(), json!(value));
        }
    };
    put("$current_url", page("url"));
    put("$pathname", page("path"));
    put("$referrer", Some(page("referrer").unwrap_or("$direct")));
    put("title", page("title"));
    put("$raw_user_agent", text(event, "/context/userAgent"));
    put("$lib", Some("web"));
    put("$lib_version", Some(POSTHOG_LIB_VERSION));
    put("$device_id", Some(anonymous_id));
    put("token", token);
    let name = match text(event, "/type") {
        Some("page") => "$pageview",
        Some("identify") => {
            put("$anon_distinct_id", Some(anonymous_id));
            "$identify"
        }
        _ => text(event, "/event").unwrap_or("event"),
    };
    let mut out = json!({
        "event": name,
        "distinct_id": user_id.unwrap_or(anonymous_id),
        "uuid": text(event, "/messageId"),
        "timestamp": text(event, "/timestamp"),
        "properties": properties,
    });
    if let Some(traits) = event.get("traits").filter(|t| t.is_object()) {
        out["$set"] = traits.clone();
    }
    out
}

/// One event as Snowplow's JavaScript tracker posts it: every field a string, page views as
/// `pv`, everything else as a self-describing `ue` named after the event.
fn snowplow_event(event: &Value, app_id: &str, sent_at_ms: i64) -> Value {
    let created_ms = text(event, "/timestamp")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(sent_at_ms, |t| t.timestamp_millis());
    let mut fields = Map::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            fields.insert(key.to_owned(), json!(value));
        }
    };
    let is_page = text(event, "/type") == Some("page");
    put("e", Some(if is_page { "pv" } else { "ue" }));
    put("eid", text(event, "/messageId"));
    put("aid", Some(app_id));
    put("p", Some("web"));
    put("tv", Some(SNOWPLOW_TRACKER));
    put("tna", Some("sp"));
    put("duid", text(event, "/anonymousId"));
    put("uid", text(event, "/userId"));
    put("dtm", Some(&created_ms.to_string()));
    put("stm", Some(&sent_at_ms.to_string()));
    put("url", text(event, "/context/page/url"));
    put("refr", text(event, "/context/page/referrer"));
    put("page", text(event, "/context/page/title"));
    put("ua", text(event, "/context/userAgent"));
    put("lang", text(event, "/context/locale"));
    put("tz", text(event, "/context/timezone"));
    if !is_page {
        let name = match text(event, "/type") {
            Some("identify") => "identify".to_owned(),
            _ => snake_case(text(event, "/event").unwrap_or("event")),
        };
        let data = event.get("properties").or_else(|| event.get("traits")).cloned().unwrap_or_else(|| json!({}));
        let self_describing = json!({
            "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
            "data": {"schema": format!("iglu:example.shop/{name}/jsonschema/1-0-0"), "data": data},
        });
        fields.insert("ue_pr".into(), json!(self_describing.to_string()));
    }
    Value::Object(fields)
}

/// "Product Viewed" → "product_viewed", as Iglu schema names are written.
fn snake_case(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::super::catalog::Catalog;
    use super::super::ids::{MessageTag, Sequence};
    use super::super::{Generator, Mode};
    use super::*;

    fn generator(protocol: Protocol, mode: Mode) -> Generator {
        Generator::new(Arc::new(Catalog::builtin()), 50, 11, Sequence::new(0xabcd), "wk", mode).with_protocol(protocol)
    }

    /// The message ids in a body, in order, wherever the protocol keeps them.
    fn stamped_ids(body: &Value, events: &str, id: &str) -> Vec<MessageTag> {
        let events =
            if events.is_empty() { std::slice::from_ref(body) } else { body[events].as_array().expect("events") };
        events.iter().map(|e| MessageTag::parse(e[id].as_str().expect("id").as_bytes()).expect("our id")).collect()
    }

    #[test]
    fn posthog_and_snowplow_bodies_carry_stamped_ids_and_the_key() {
        for (protocol, mode, path, events, id) in [
            (Protocol::Posthog, Mode::Batch { events: 20 }, "/batch/", "batch", "uuid"),
            (Protocol::Posthog, Mode::Single, "/e/?ver=1.200.0", "", "uuid"),
            (Protocol::Snowplow, Mode::Batch { events: 20 }, SNOWPLOW_TP2, "data", "eid"),
        ] {
            let mut generator = generator(protocol, mode);
            for round in 0..20u64 {
                let mut request = generator.next_request();
                request.stamp(round * 1000 + 7);
                assert_eq!((request.method, &*request.path), ("POST", path));
                let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
                let tags = stamped_ids(&body, events, id);
                assert_eq!(tags.len(), mode.events_per_request());
                for (offset, tag) in tags.iter().enumerate() {
                    assert_eq!((tag.seq, tag.intended_us), (request.first_seq + offset as u64, round * 1000 + 7));
                }
                let first = if events.is_empty() { &body } else { &body[events][0] };
                match protocol {
                    Protocol::Posthog if events.is_empty() => assert_eq!(first["properties"]["token"], "wk"),
                    Protocol::Posthog => assert_eq!(body["api_key"], "wk"),
                    _ => assert_eq!((first["aid"].as_str(), first["p"].as_str()), (Some("wk"), Some("web"))),
                }
            }
        }
    }

    #[test]
    fn pixel_requests_are_gets_whose_data_is_the_stamped_event() {
        let mut generator = generator(Protocol::Pixel, Mode::Single);
        for round in 0..50u64 {
            let mut request = generator.next_request();
            request.stamp(round + 1);
            assert_eq!(request.method, "GET");
            let (path, data) = request.path.split_once("?data=").expect("data in the query");
            let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data).expect("base64");
            let event: Value = serde_json::from_slice(&json).expect("JSON");
            assert_eq!(path, format!("/v1/pixel/{}", event["type"].as_str().expect("type")));
            assert_eq!(event["writeKey"], "wk");
            let tag = MessageTag::find_in(&json).expect("our id");
            assert_eq!((tag.seq, tag.intended_us), (request.first_seq, round + 1));
        }
    }
}
