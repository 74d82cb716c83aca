//! Snowplow's tracker protocol: `POST /com.snowplowanalytics.snowplow/tp2` (a `payload_data`
//! self-describing JSON whose `data` array holds the events) and `GET /i` (one event in the
//! query string, answered with a GIF). Here: the body, the source (app id or write key) and
//! the collector's network user id cookie; `snowplow_map` maps each event.

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Response};
use http_body_util::Full;
use serde_json::{Map, Value};

use super::snowplow_map::{self, RequestFacts};
use super::{pixel, segment, Canonical, Outcome};
use crate::config::{GatewayConfig, SnowplowConfig};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::sources::{basic_auth_user, header_write_key};

/// Where Snowplow's trackers POST by default.
pub const SNOWPLOW_POST_PATH: &str = "/com.snowplowanalytics.snowplow/tp2";

/// The schema prefix of the POST body's self-describing envelope (any version).
const PAYLOAD_SCHEMA: &str = "iglu:com.snowplowanalytics.snowplow/payload_data/";

/// Which of the collector's endpoints a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnowplowRoute {
    /// `POST /com.snowplowanalytics.snowplow/tp2`: a batch, answered with JSON.
    Post,
    /// `GET /i`: one event in the query, always answered with a 1×1 GIF.
    Pixel,
}

impl SnowplowRoute {
    pub fn template(self) -> &'static str {
        match self {
            Self::Post => SNOWPLOW_POST_PATH,
            Self::Pixel => "snowplow:/i",
        }
    }
}

pub(super) fn translate(
    route: SnowplowRoute,
    parts: &Parts,
    body: &[u8],
    config: &GatewayConfig,
) -> Result<Canonical, GatewayError> {
    let events = match route {
        SnowplowRoute::Post => payload_events(body)?,
        SnowplowRoute::Pixel => vec![query_event(parts.uri.query())],
    };
    let settings = &config.snowplow;
    // `SP-Anonymous`: the tracker asks that nothing identify the browser, so no cookie.
    let anonymous = parts.headers.contains_key("sp-anonymous");
    let (network_user_id, set_cookie) = match read_cookie(&parts.headers, &settings.cookie_name) {
        Some(id) => (Some(id), None),
        None if anonymous || !settings.network_cookie => (None, None),
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            let cookie = cookie_header(&id, settings);
            (Some(id), cookie)
        }
    };
    let keyed_by_header = basic_auth_user(&parts.headers).is_some() || header_write_key(&parts.headers).is_some();
    let app_id = events.iter().find_map(|e| e.get("aid")?.as_str().filter(|aid| !aid.is_empty())).map(str::to_owned);
    let (write_key, source_name) = match app_id {
        _ if keyed_by_header => (None, None),
        Some(app_id) => match settings.app_sources.get(&app_id) {
            Some(source) => (None, Some(source.clone())),
            None => (Some(app_id), None),
        },
        None => return Err(GatewayError::MissingSnowplowKey),
    };
    let facts = RequestFacts { network_user_id: network_user_id.as_deref(), key_app_id: write_key.as_deref() };
    let events =
        events.into_iter().enumerate().map(|(index, event)| snowplow_map::to_segment(index, event, &facts)).collect();
    let mut canonical = Canonical::from_events(events, write_key);
    canonical.source_name = source_name;
    canonical.set_cookie = set_cookie;
    Ok(canonical)
}

/// The POST answer is Segment's JSON (the trackers read only the status); `GET /i` answers
/// the GIF whatever happened, as the pixel does. The cookie goes on successful answers.
pub(super) fn respond(
    route: SnowplowRoute,
    result: Result<Outcome, GatewayError>,
    metrics: &Metrics,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    let set_cookie = result.as_ref().ok().and_then(|outcome| outcome.set_cookie.clone());
    let mut response = match route {
        SnowplowRoute::Post => segment::respond(&result?),
        SnowplowRoute::Pixel => pixel::respond(&result, metrics),
    };
    if let Some(cookie) = set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The events of a POST body: `{"schema": "iglu:…/payload_data/jsonschema/1-0-4", "data": [...]}`.
fn payload_events(body: &[u8]) -> Result<Vec<Value>, GatewayError> {
    const SHAPE: &str = "a Snowplow POST body is a self-describing JSON \
        {\"schema\": \"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4\", \"data\": [events]}";
    let value: Value = serde_json::from_slice(body).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    let Value::Object(mut envelope) = value else {
        return Err(GatewayError::BadShape(format!("{SHAPE}, got {}", snowplow_map::type_name(&value))));
    };
    match envelope.get("schema") {
        None => {}
        Some(Value::String(schema)) if schema.starts_with(PAYLOAD_SCHEMA) => {}
        Some(other) => {
            return Err(GatewayError::BadShape(format!(
                "{SHAPE}; field `schema` is {other}, not a payload_data schema"
            )))
        }
    }
    match envelope.remove("data") {
        Some(Value::Array(events)) if events.is_empty() => {
            Err(GatewayError::BadShape(format!("{SHAPE}; `data` holds no events")))
        }
        Some(Value::Array(events)) => Ok(events),
        Some(other) => {
            Err(GatewayError::BadShape(format!("{SHAPE}; field `data` is {}", snowplow_map::type_name(&other))))
        }
        None => Err(GatewayError::BadShape(format!("{SHAPE}; field `data` is missing"))),
    }
}

/// A `GET /i` event: every query parameter, as the strings Snowplow sends.
fn query_event(query: Option<&str>) -> Value {
    let fields: Map<String, Value> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
        .collect();
    Value::Object(fields)
}

/// The network user id from the request's cookies, when it looks like an id.
fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|id| !id.is_empty() && id.len() <= 128)
}

/// `SameSite=None; Secure`, as Snowplow's collector sets it: the tracker's page is usually on
/// another site, and browsers keep a cross-site cookie only with both. Over plain HTTP only
/// `localhost` keeps a `Secure` cookie.
fn cookie_header(id: &str, settings: &SnowplowConfig) -> Option<HeaderValue> {
    let max_age = u64::from(settings.cookie_max_age_days) * 86_400;
    let mut cookie =
        format!("{}={id}; Path=/; Max-Age={max_age}; SameSite=None; Secure; HttpOnly", settings.cookie_name);
    if !settings.cookie_domain.is_empty() {
        cookie.push_str(&format!("; Domain={}", settings.cookie_domain));
    }
    HeaderValue::from_str(&cookie).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("request").into_parts().0
    }

    fn batch(canonical: &Canonical) -> Value {
        serde_json::from_slice(&canonical.body.as_ref().expect("events").0).expect("json")
    }

    const BODY: &str = r#"{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data":[{"e":"pv","aid":"shop","duid":"d1","eid":"4b1c2a8e-0000-4000-8000-000000000001"}]}"#;

    #[test]
    fn the_app_id_is_the_key_unless_mapped_or_a_header_names_one() {
        let mut config = GatewayConfig::default();
        let unmapped = translate(SnowplowRoute::Post, &parts("/", &[]), BODY.as_bytes(), &config).expect("ok");
        assert_eq!((unmapped.write_key.as_deref(), unmapped.source_name.as_deref()), (Some("shop"), None));
        assert!(batch(&unmapped)["batch"][0]["context"]["snowplow"].get("appId").is_none(), "a key is stripped");
        config.snowplow.app_sources.insert("shop".into(), "web".into());
        let mapped = translate(SnowplowRoute::Post, &parts("/", &[]), BODY.as_bytes(), &config).expect("ok");
        assert_eq!((mapped.write_key.as_deref(), mapped.source_name.as_deref()), (None, Some("web")));
        assert_eq!(batch(&mapped)["batch"][0]["context"]["snowplow"]["appId"], "shop");
        let header = translate(SnowplowRoute::Post, &parts("/", &[("x-write-key", "k")]), BODY.as_bytes(), &config);
        let header = header.expect("ok");
        assert_eq!((header.write_key, header.source_name), (None, None));
        let keyless = br#"{"data":[{"e":"pv","duid":"d1"}]}"#;
        let error = translate(SnowplowRoute::Post, &parts("/", &[]), keyless, &config).expect_err("no key");
        assert!(matches!(error, GatewayError::MissingSnowplowKey));
    }

    #[test]
    fn the_network_cookie_is_read_or_set_once() {
        let config = GatewayConfig::default();
        let fresh = translate(SnowplowRoute::Post, &parts("/", &[]), BODY.as_bytes(), &config).expect("ok");
        let cookie = fresh.set_cookie.as_ref().expect("set when absent").to_str().expect("ascii").to_owned();
        let id = cookie.strip_prefix("sp=").and_then(|c| c.split(';').next()).expect("sp=<id>");
        assert_eq!(batch(&fresh)["batch"][0]["context"]["snowplow"]["networkUserId"], id);
        assert!(cookie.contains("SameSite=None; Secure") && cookie.contains("Max-Age=31536000"), "{cookie}");
        let known = parts("/", &[("cookie", "a=1; sp=abc-123; b=2")]);
        let again = translate(SnowplowRoute::Post, &known, BODY.as_bytes(), &config).expect("ok");
        assert!(again.set_cookie.is_none());
        assert_eq!(batch(&again)["batch"][0]["context"]["snowplow"]["networkUserId"], "abc-123");
        let anonymous = parts("/", &[("sp-anonymous", "*")]);
        assert!(translate(SnowplowRoute::Post, &anonymous, BODY.as_bytes(), &config).expect("ok").set_cookie.is_none());
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let config = GatewayConfig::default();
        let error = |body: &str| translate(SnowplowRoute::Post, &parts("/", &[]), body.as_bytes(), &config).err();
        assert!(matches!(error("{nope"), Some(GatewayError::InvalidJson(_))));
        for body in ["[]", r#"{"schema":"iglu:x/y/jsonschema/1-0-0","data":[]}"#, r#"{"data":{}}"#, "{}"] {
            match error(body) {
                Some(GatewayError::BadShape(reason)) => assert!(reason.contains("payload_data"), "{reason}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
