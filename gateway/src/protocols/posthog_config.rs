//! What posthog-js fetches when it starts: remote config (`/array/<token>/config` and
//! `config.js`) and flags (`/flags`, `/decide`). Each is answered with an empty, valid
//! configuration (no feature flags, no session recording, no surveys, nothing to load), so the
//! SDK runs with its defaults and logs no error.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::error::json_response;

/// One of posthog-js's start-up requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostHogConfigRoute {
    /// `POST /flags` (current SDKs) or `/decide` (older ones).
    Flags,
    /// `GET /array/<token>/config`: remote config as JSON.
    RemoteConfig(String),
    /// `GET /array/<token>/config.js`: the same, as a script that registers it.
    RemoteConfigScript(String),
}

impl PostHogConfigRoute {
    pub fn resolve(method: &Method, path: &str) -> Option<Self> {
        let get = method == Method::GET || method == Method::HEAD;
        match path {
            "/flags" | "/decide" if get || method == Method::POST => return Some(Self::Flags),
            _ => {}
        }
        let rest = path.strip_prefix("/array/").filter(|_| get)?;
        let (token, file) = rest.split_once('/')?;
        if token.is_empty() {
            return None;
        }
        match file {
            "config" => Some(Self::RemoteConfig(token.to_owned())),
            "config.js" => Some(Self::RemoteConfigScript(token.to_owned())),
            _ => None,
        }
    }

    pub fn template(&self) -> &'static str {
        match self {
            Self::Flags => "posthog:/flags",
            Self::RemoteConfig(_) => "posthog:/array/{token}/config",
            Self::RemoteConfigScript(_) => "posthog:/array/{token}/config.js",
        }
    }

    pub fn respond(&self, _query: Option<&str>) -> Response<Full<Bytes>> {
        match self {
            Self::Flags => {
                let mut body = remote_config(None);
                let flags = json!({"flags": {}, "featureFlags": {}, "featureFlagPayloads": {},
                    "errorsWhileComputingFlags": false, "quotaLimited": []});
                body.as_object_mut().into_iter().for_each(|b| b.extend(flags.as_object().cloned().unwrap_or_default()));
                json_response(StatusCode::OK, &body)
            }
            Self::RemoteConfig(token) => json_response(StatusCode::OK, &remote_config(Some(token))),
            Self::RemoteConfigScript(token) => {
                let token_json = Value::String(token.clone());
                let config = json!({"config": remote_config(Some(token)), "siteApps": []});
                let script = format!(
                    "(function(){{var w=window;w._POSTHOG_REMOTE_CONFIG=w._POSTHOG_REMOTE_CONFIG||{{}};\
                     w._POSTHOG_REMOTE_CONFIG[{token_json}]={config};}})();\n"
                );
                let mut response = Response::new(Full::new(Bytes::from(script)));
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/javascript"));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
                response
            }
        }
    }
}

/// Everything off: the SDK captures events and loads nothing else. `supportedCompression`
/// lets it gzip its bodies, which the capture endpoints read.
fn remote_config(token: Option<&str>) -> Value {
    json!({
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": false,
        "autocapture_opt_out": false,
        "autocaptureExceptions": false,
        "captureDeadClicks": false,
        "capturePerformance": false,
        "elementsChainAsString": true,
        "heatmaps": false,
        "sessionRecording": false,
        "surveys": false,
        "siteApps": [],
        "defaultIdentifiedOnly": true,
    })
}
