//! One Snowplow tracker-protocol event → one Segment event. The type comes from `e` (`pv` →
//! page, `pp` → track `Page Ping`, `se` → track named by its action, `ue` → track named by its
//! schema, `tr` → `Order Completed`, `ti` → `Product Purchased`); the ids, times and browser
//! fields go where Segment keeps them; every field left over lands in `context.snowplow`.
//! docs/send-from-your-tracker.md has the table.

use chrono::DateTime;
use serde_json::{json, Map, Value};

use super::{decode_base64, rejected};
use crate::error::RejectedItem;

type Mapped = Result<Value, (RejectedItem, Value)>;
type Failure = (&'static str, String);

/// What the request, rather than the event, says.
#[derive(Debug)]
pub(super) struct RequestFacts<'a> {
    /// From the `sp` cookie (or newly set in it).
    pub network_user_id: Option<&'a str>,
    /// The app id that served as the write key: a credential, so not stored.
    pub key_app_id: Option<&'a str>,
}

pub(super) fn to_segment(index: usize, event: Value, facts: &RequestFacts<'_>) -> Mapped {
    let Value::Object(fields) = &event else {
        let reason = format!("event must be a JSON object of strings, got {}", type_name(&event));
        return Err(rejected(index, "not_an_object", reason, event));
    };
    map(Fields(fields.clone()), facts).map_err(|(kind, reason)| rejected(index, kind, reason, event))
}

fn map(mut fields: Fields, facts: &RequestFacts<'_>) -> Result<Value, Failure> {
    let mut out = Map::new();
    let mut properties = Map::new();
    let mut context = Map::new();
    let mut snowplow = Map::new();
    let Some(kind) = fields.text("e") else {
        return Err(("missing_event_type", "field `e` (the event type: pv, pp, se, ue, tr or ti) is missing".into()));
    };
    let page = page_of(&mut fields);
    let event_type = match kind.as_str() {
        "pv" => {
            // As analytics.js sends a page call: the page in its properties too.
            properties.extend(page.clone());
            "page"
        }
        "pp" => {
            out.insert("event".into(), json!("Page Ping"));
            for (field, name) in [("pp_mix", "minXOffset"), ("pp_max", "maxXOffset")]
                .into_iter()
                .chain([("pp_miy", "minYOffset"), ("pp_may", "maxYOffset")])
            {
                properties.extend(fields.number(field)?.map(|n| (name.to_owned(), n)));
            }
            "track"
        }
        "se" => {
            let Some(action) = fields.text("se_ac") else {
                return Err(("missing_action", "a structured event (`e=se`) needs `se_ac`, its action".into()));
            };
            out.insert("event".into(), json!(action));
            properties.insert("action".into(), json!(action));
            for (field, name) in [("se_ca", "category"), ("se_la", "label"), ("se_pr", "property")] {
                properties.extend(fields.text(field).map(|text| (name.to_owned(), json!(text))));
            }
            properties.extend(fields.number("se_va")?.map(|value| ("value".to_owned(), value)));
            "track"
        }
        "ue" => {
            let (schema, data) = self_describing_event(&mut fields)?;
            out.insert("event".into(), json!(schema_name(&schema)));
            match data {
                Value::Object(data) => properties.extend(data),
                other => drop(properties.insert("data".into(), other)),
            }
            snowplow.insert("schema".into(), json!(schema));
            "track"
        }
        "tr" => {
            out.insert("event".into(), json!("Order Completed"));
            let Some(order) = fields.text("tr_id") else {
                return Err(("missing_order_id", "a transaction (`e=tr`) needs `tr_id`, its order id".into()));
            };
            properties.insert("order_id".into(), json!(order));
            for (field, name) in [("tr_af", "affiliation"), ("tr_ci", "city"), ("tr_st", "state")] {
                properties.extend(fields.text(field).map(|text| (name.to_owned(), json!(text))));
            }
            for (field, name) in [("tr_co", "country"), ("tr_cu", "currency")] {
                properties.extend(fields.text(field).map(|text| (name.to_owned(), json!(text))));
            }
            for (field, name) in [("tr_tt", "total"), ("tr_tx", "tax"), ("tr_sh", "shipping")] {
                properties.extend(fields.number(field)?.map(|n| (name.to_owned(), n)));
            }
            "track"
        }
        "ti" => {
            out.insert("event".into(), json!("Product Purchased"));
            let Some(sku) = fields.text("ti_sk") else {
                return Err(("missing_sku", "a transaction item (`e=ti`) needs `ti_sk`, its SKU".into()));
            };
            properties.insert("product_id".into(), json!(sku));
            properties.insert("sku".into(), json!(sku));
            for (field, name) in
                [("ti_id", "order_id"), ("ti_nm", "name"), ("ti_ca", "category"), ("ti_cu", "currency")]
            {
                properties.extend(fields.text(field).map(|text| (name.to_owned(), json!(text))));
            }
            for (field, name) in [("ti_pr", "price"), ("ti_qu", "quantity")] {
                properties.extend(fields.number(field)?.map(|n| (name.to_owned(), n)));
            }
            "track"
        }
        other => {
            let reason = format!("field `e` is {other:?}; expected pv, pp, se, ue, tr or ti");
            return Err(("unknown_event_type", reason));
        }
    };
    out.insert("type".into(), json!(event_type));
    if !page.is_empty() {
        context.insert("page".into(), Value::Object(page));
    }
    identities(&mut fields, &mut out, &mut snowplow, facts)?;
    times(&mut fields, &mut out, &mut snowplow)?;
    browser(&mut fields, &mut context, &mut snowplow)?;
    if let Some(contexts) = contexts(&mut fields)? {
        snowplow.insert("contexts".into(), contexts);
    }
    // Whatever has no canonical home is kept as sent.
    snowplow.extend(fields.0);
    context.insert("snowplow".into(), Value::Object(snowplow));
    out.insert("properties".into(), Value::Object(properties));
    out.insert("context".into(), Value::Object(context));
    Ok(Value::Object(out))
}

/// `url`, `refr` and `page` as Segment's page fields, with `path` and `search` from the URL.
fn page_of(fields: &mut Fields) -> Map<String, Value> {
    let mut page = Map::new();
    if let Some(url) = fields.text("url") {
        if let Ok(parsed) = url::Url::parse(&url) {
            page.insert("path".into(), json!(parsed.path()));
            page.insert("search".into(), json!(parsed.query().map(|q| format!("?{q}")).unwrap_or_default()));
        }
        page.insert("url".into(), json!(url));
    }
    page.extend(fields.text("refr").map(|referrer| ("referrer".into(), json!(referrer))));
    page.extend(fields.text("page").map(|title| ("title".into(), json!(title))));
    page
}

/// `uid` is the user; `duid` (the tracker's first-party cookie id), else the network user id,
/// is the anonymous id.
fn identities(
    fields: &mut Fields,
    out: &mut Map<String, Value>,
    snowplow: &mut Map<String, Value>,
    facts: &RequestFacts<'_>,
) -> Result<(), Failure> {
    let network = fields.text("tnuid").or_else(|| facts.network_user_id.map(str::to_owned));
    let user = fields.text("uid");
    let anonymous = fields.text("duid").or_else(|| network.clone());
    if user.is_none() && anonymous.is_none() {
        let reason = "no `uid`, `duid` or network user id (the collector cookie) to say who this is".into();
        return Err(("missing_identity", reason));
    }
    out.extend(user.map(|id| ("userId".to_owned(), json!(id))));
    out.extend(anonymous.map(|id| ("anonymousId".to_owned(), json!(id))));
    snowplow.extend(network.map(|id| ("networkUserId".to_owned(), json!(id))));
    out.extend(fields.text("eid").map(|id| ("messageId".to_owned(), json!(id))));
    match fields.text("aid") {
        Some(app) if Some(app.as_str()) == facts.key_app_id => {}
        app => snowplow.extend(app.map(|app| ("appId".to_owned(), json!(app)))),
    }
    Ok(())
}

/// `dtm` is when the event happened by the device's clock and `stm` when it was sent, so the
/// gateway's clock-skew correction applies as to Segment's `originalTimestamp` and `sentAt`.
/// `ttm`, a time the sender vouches for, is the `timestamp` as it stands: `stm` is then kept in
/// `context.snowplow.sentAt` rather than correcting it.
fn times(fields: &mut Fields, out: &mut Map<String, Value>, snowplow: &mut Map<String, Value>) -> Result<(), Failure> {
    let created = fields.millis("dtm")?;
    let sent = fields.millis("stm")?;
    let true_time = fields.millis("ttm")?;
    out.extend(created.map(|at| ("originalTimestamp".to_owned(), at)));
    match true_time {
        Some(at) => {
            out.insert("timestamp".into(), at);
            snowplow.extend(sent.map(|at| ("sentAt".to_owned(), at)));
        }
        None => out.extend(sent.map(|at| ("sentAt".to_owned(), at))),
    }
    Ok(())
}

/// The browser and tracker fields Segment's `context` has a place for.
fn browser(
    fields: &mut Fields,
    context: &mut Map<String, Value>,
    snowplow: &mut Map<String, Value>,
) -> Result<(), Failure> {
    context.extend(fields.text("ua").map(|ua| ("userAgent".into(), json!(ua))));
    context.extend(fields.text("lang").map(|lang| ("locale".into(), json!(lang))));
    context.extend(fields.text("tz").map(|tz| ("timezone".into(), json!(tz))));
    context.extend(fields.text("ip").map(|ip| ("ip".into(), json!(ip))));
    context.extend(fields.text("sid").map(|id| ("sessionId".into(), json!(id))));
    let mut screen = Map::new();
    if let Some((width, height)) = fields.dimensions("res") {
        screen.extend([("width".to_owned(), width), ("height".to_owned(), height)]);
    }
    if let Some((width, height)) = fields.dimensions("vp") {
        screen.extend([("innerWidth".to_owned(), width), ("innerHeight".to_owned(), height)]);
    }
    if !screen.is_empty() {
        context.insert("screen".into(), Value::Object(screen));
    }
    if let Some(version) = fields.text("tv") {
        // `js-4.1.0`, `py-1.0.4`: the tracker family, then its version.
        let (family, number) = version.split_once('-').unwrap_or(("", &version));
        let name = if family.is_empty() { "snowplow".to_owned() } else { format!("snowplow-{family}") };
        context.insert("library".into(), json!({"name": name, "version": number}));
    }
    if let Some(index) = fields.0.get("vid").and_then(Value::as_str).and_then(|v| v.parse::<u64>().ok()) {
        fields.0.remove("vid");
        snowplow.insert("sessionIndex".into(), json!(index));
    }
    for (field, name) in [("p", "platform"), ("tna", "namespace")] {
        snowplow.extend(fields.text(field).map(|text| (name.to_owned(), json!(text))));
    }
    Ok(())
}

/// `ue_pr` (JSON) or `ue_px` (base64 JSON): the `unstruct_event` envelope around the event's
/// own `{schema, data}`.
fn self_describing_event(fields: &mut Fields) -> Result<(String, Value), Failure> {
    let fail = |reason: String| ("invalid_self_describing_event", reason);
    let envelope = match (fields.text("ue_pr"), fields.text("ue_px")) {
        (Some(json), _) => parse_json("ue_pr", json.as_bytes()).map_err(fail)?,
        (None, Some(encoded)) => {
            let json = decode_base64(&encoded).map_err(|e| fail(format!("field `ue_px` is not base64: {e}")))?;
            parse_json("ue_px", &json).map_err(fail)?
        }
        (None, None) => {
            let reason = "a self-describing event (`e=ue`) needs `ue_pr` or `ue_px`".into();
            return Err(("missing_self_describing_event", reason));
        }
    };
    let inner = match envelope.get("data") {
        Some(Value::Object(inner)) if inner.contains_key("schema") => inner.clone(),
        _ => envelope.as_object().cloned().unwrap_or_default(),
    };
    match (inner.get("schema"), inner.get("data")) {
        (Some(Value::String(schema)), Some(data)) if !schema_name(schema).is_empty() => {
            Ok((schema.clone(), data.clone()))
        }
        _ => Err(fail(
            "the self-describing event has no `{\"schema\": \"iglu:vendor/name/format/version\", \"data\": ...}`"
                .into(),
        )),
    }
}

/// `co` (JSON) or `cx` (base64 JSON): the `contexts` envelope's list of entities.
fn contexts(fields: &mut Fields) -> Result<Option<Value>, Failure> {
    let fail = |reason: String| ("invalid_contexts", reason);
    let envelope = match (fields.text("co"), fields.text("cx")) {
        (Some(json), _) => parse_json("co", json.as_bytes()).map_err(fail)?,
        (None, Some(encoded)) => {
            let json = decode_base64(&encoded).map_err(|e| fail(format!("field `cx` is not base64: {e}")))?;
            parse_json("cx", &json).map_err(fail)?
        }
        (None, None) => return Ok(None),
    };
    match envelope {
        Value::Object(mut map) => match map.remove("data") {
            Some(Value::Array(entities)) => Ok(Some(Value::Array(entities))),
            _ => Err(fail("the contexts are not `{\"schema\": ..., \"data\": [entities]}`".into())),
        },
        Value::Array(entities) => Ok(Some(Value::Array(entities))),
        other => Err(fail(format!("the contexts are {}, not an object", type_name(&other)))),
    }
}

fn parse_json(field: &str, bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("field `{field}` is not JSON: {e}"))
}

/// `iglu:com.acme/link_click/jsonschema/1-0-0` → `link_click`.
fn schema_name(schema: &str) -> &str {
    schema.split('/').nth(1).unwrap_or_default()
}

/// An event's fields, taken out one by one as they are mapped, so what is left over is what
/// has no canonical home.
struct Fields(Map<String, Value>);

impl Fields {
    /// Snowplow sends strings; a number or boolean is read as its text, an empty string as absent.
    fn text(&mut self, name: &str) -> Option<String> {
        match self.0.remove(name)? {
            Value::String(text) if !text.is_empty() => Some(text),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            Value::String(_) | Value::Null => None,
            other => {
                self.0.insert(name.to_owned(), other);
                None
            }
        }
    }

    fn number(&mut self, name: &str) -> Result<Option<Value>, Failure> {
        let Some(text) = self.text(name) else { return Ok(None) };
        if let Ok(integer) = text.trim().parse::<i64>() {
            return Ok(Some(json!(integer)));
        }
        match text.trim().parse::<f64>().ok().filter(|n| n.is_finite()) {
            Some(number) => Ok(Some(json!(number))),
            None => Err(("invalid_number", format!("field `{name}` must be a number, got {text:?}"))),
        }
    }

    /// Milliseconds since the epoch, as ISO-8601.
    fn millis(&mut self, name: &str) -> Result<Option<Value>, Failure> {
        let Some(text) = self.text(name) else { return Ok(None) };
        let at = text.trim().parse::<i64>().ok().and_then(DateTime::from_timestamp_millis);
        match at {
            Some(at) => Ok(Some(json!(clickstream_schema::format_timestamp(at)))),
            None => Err(("invalid_timestamp", format!("field `{name}` must be milliseconds since 1970, got {text:?}"))),
        }
    }

    /// `1920x1080` → (1920, 1080); anything else stays as sent, in `context.snowplow`.
    fn dimensions(&mut self, name: &str) -> Option<(Value, Value)> {
        let text = self.0.get(name)?.as_str()?;
        let (width, height) = text.split_once('x')?;
        let size = (json!(width.trim().parse::<u64>().ok()?), json!(height.trim().parse::<u64>().ok()?));
        self.0.remove(name);
        Some(size)
    }
}

pub(super) fn type_name(value: &Value) -> &'static str {
    super::posthog_map::type_name(value)
}

#[cfg(test)]
#[path = "snowplow_map_tests.rs"]
mod tests;
