//! One PostHog event → one Segment event. The type comes from the event name (`$pageview` →
//! page, `$screen` → screen, `$identify` → identify, `$groupidentify` → group,
//! `$create_alias` → alias, anything else → track); the ids from `distinct_id` as PostHog means
//! it; every property is kept, and every other top-level field lands in `context.posthog`.
//! docs/send-from-your-tracker.md has the table.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::posthog::timestamp;
use super::rejected;
use crate::error::RejectedItem;

type Mapped = Result<Value, (RejectedItem, Value)>;

/// Top-level fields with a canonical home; any other goes to `context.posthog`.
const MAPPED_FIELDS: [&str; 8] =
    ["event", "distinct_id", "properties", "uuid", "timestamp", "$set", "api_key", "token"];

pub(super) fn to_segment(
    index: usize,
    event: Value,
    sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> Mapped {
    let fail = |kind, reason: String, event: &Value| Err(rejected(index, kind, reason, event.clone()));
    let Value::Object(mut source) = event else {
        return fail("not_an_object", format!("event must be a JSON object, got {}", type_name(&event)), &event);
    };
    let original = Value::Object(source.clone());
    let name = match source.get("event") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return fail("missing_event", "field `event` is missing or not a non-empty string".into(), &original),
    };
    let mut properties = match source.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            let reason = format!("field `properties` must be an object, got {}", type_name(&other));
            return fail("invalid_properties", reason, &original);
        }
    };
    // The project key is a credential, stripped as Segment's `writeKey` is.
    properties.remove("token");
    let distinct_id = id_text(source.get("distinct_id")).or_else(|| id_text(properties.get("distinct_id")));
    let Some(distinct_id) = distinct_id else {
        return fail("missing_identity", "field `distinct_id` is missing or empty".into(), &original);
    };
    let mut out = Map::new();
    let set = source.remove("$set").or_else(|| properties.remove("$set"));
    let kind = match name.as_str() {
        "$pageview" => "page",
        "$screen" => {
            if let Some(screen) = properties.get("$screen_name").cloned() {
                out.insert("name".into(), screen);
            }
            "screen"
        }
        "$identify" => {
            out.insert("userId".into(), json!(distinct_id));
            let anonymous = properties.remove("$anon_distinct_id").or_else(|| properties.get("$device_id").cloned());
            out.extend(anonymous.and_then(|id| id_text(Some(&id))).map(|id| ("anonymousId".into(), json!(id))));
            out.insert("traits".into(), set.clone().unwrap_or_else(|| json!({})));
            "identify"
        }
        "$groupidentify" => {
            let Some(group) = id_text(properties.get("$group_key")) else {
                return fail("missing_group_key", "`$groupidentify` needs `properties.$group_key`".into(), &original);
            };
            out.insert("groupId".into(), json!(group));
            out.insert("traits".into(), properties.remove("$group_set").unwrap_or_else(|| json!({})));
            "group"
        }
        "$create_alias" => {
            let Some(alias) = id_text(properties.get("alias")) else {
                return fail("missing_alias", "`$create_alias` needs `properties.alias`".into(), &original);
            };
            out.insert("userId".into(), json!(alias));
            out.insert("previousId".into(), json!(distinct_id));
            "alias"
        }
        _ => {
            out.insert("event".into(), json!(name));
            "track"
        }
    };
    out.insert("type".into(), json!(kind));
    if !matches!(kind, "identify" | "alias") {
        identities(&mut out, &distinct_id, &properties);
    }
    if let Some(id) = id_text(source.get("uuid")) {
        out.insert("messageId".into(), json!(id));
    }
    if let Some(at) = original_timestamp(&source, sent_at, received_at) {
        out.insert("originalTimestamp".into(), json!(clickstream_schema::format_timestamp(at)));
    }
    if let Some(at) = sent_at {
        out.insert("sentAt".into(), json!(clickstream_schema::format_timestamp(at)));
    }
    let mut context = context_from(&properties, kind);
    if let Some(set) = set.filter(|_| kind != "identify") {
        context.insert("traits".into(), set);
    }
    source.retain(|field, _| !MAPPED_FIELDS.contains(&field.as_str()));
    if !source.is_empty() {
        context.insert("posthog".into(), Value::Object(source));
    }
    out.insert("properties".into(), Value::Object(properties));
    out.insert("context".into(), Value::Object(context));
    Ok(Value::Object(out))
}

/// Who an event is about. A `distinct_id` that is the device's own id (posthog-js before
/// `identify`), or one PostHog is told to keep personless, is anonymous; any other names the
/// user, with the device id (when sent) as the anonymous id beside it.
fn identities(out: &mut Map<String, Value>, distinct_id: &str, properties: &Map<String, Value>) {
    let device = id_text(properties.get("$device_id"));
    let personless = properties.get("$process_person_profile") == Some(&Value::Bool(false));
    if personless || device.as_deref() == Some(distinct_id) {
        out.insert("anonymousId".into(), json!(distinct_id));
        return;
    }
    out.insert("userId".into(), json!(distinct_id));
    if let Some(device) = device {
        out.insert("anonymousId".into(), json!(device));
    }
}

/// When the event happened by the device's clock: `timestamp`, else `offset` ms before it was
/// sent. The gateway then corrects for clock skew with `sentAt`, as for any Segment event.
fn original_timestamp(
    source: &Map<String, Value>,
    sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if let Some(at) = timestamp(source.get("timestamp")) {
        return Some(at);
    }
    let offset = source.get("offset")?.as_i64()?;
    Some(sent_at.unwrap_or(received_at) - chrono::Duration::milliseconds(offset))
}

/// Segment's context fields, read from PostHog's `$` properties (which stay in `properties`).
fn context_from(properties: &Map<String, Value>, kind: &str) -> Map<String, Value> {
    let text = |name: &str| properties.get(name).filter(|v| v.is_string()).cloned();
    let mut context = Map::new();
    if let Some(library) = text("$lib") {
        let version = text("$lib_version").unwrap_or(Value::Null);
        context.insert("library".into(), json!({"name": library, "version": version}));
    }
    if let Some(url) = text("$current_url") {
        let mut page = Map::new();
        if let Some(search) = url.as_str().and_then(|u| u.split_once('?')).map(|(_, q)| q.split('#').next()) {
            page.insert("search".into(), json!(format!("?{}", search.unwrap_or_default())));
        }
        page.insert("url".into(), url);
        page.extend(text("$pathname").map(|p| ("path".into(), p)));
        page.extend(text("$referrer").filter(|r| r != "$direct").map(|r| ("referrer".into(), r)));
        page.extend(text("title").filter(|_| kind == "page").map(|t| ("title".into(), t)));
        context.insert("page".into(), Value::Object(page));
    }
    if let (Some(width), Some(height)) = (properties.get("$screen_width"), properties.get("$screen_height")) {
        context.insert("screen".into(), json!({"width": width, "height": height}));
    }
    context.extend(text("$raw_user_agent").map(|ua| ("userAgent".into(), ua)));
    context.extend(text("$ip").map(|ip| ("ip".into(), ip)));
    context.extend(text("$browser_language").map(|l| ("locale".into(), l)));
    context.extend(text("$timezone").map(|tz| ("timezone".into(), tz)));
    context
}

/// An id as text: a non-empty string, or a number's decimal form.
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[path = "posthog_map_tests.rs"]
mod tests;
