//! The operator's console on the admin listener (`/console`): its page and assets, embedded at
//! build time, the live stream, the figures and the install settings, behind an optional bearer
//! token; and what `clickstream tail` shares with it (reading topics as an outside observer,
//! summarizing and filtering records).

mod feed;
pub mod reader;
mod sse;
pub mod stats;
pub mod summary;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use clickstream_platform::admin::{AdminAnswer, AdminBody, AdminRoutes};
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::app::AppState;
use feed::{Feed, Lane};
use summary::Filter;

#[derive(rust_embed::Embed)]
#[folder = "console/"]
struct Assets;

/// The console of one gateway.
pub struct Console {
    state: AppState,
    /// Where the gateway takes events, for the install snippets.
    gateway_addr: SocketAddr,
    feed: Mutex<Option<Arc<Feed>>>,
    closing: watch::Sender<bool>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").field("gateway_addr", &self.gateway_addr).finish_non_exhaustive()
    }
}

impl Console {
    pub fn new(state: AppState, gateway_addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self { state, gateway_addr, feed: Mutex::new(None), closing: watch::channel(false).0 })
    }

    /// Ends the live streams and stops reading Kafka.
    pub fn shutdown(&self) {
        let _ = self.closing.send(true);
        if let Some(feed) = self.feed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            feed.stop();
        }
    }

    /// The running reader, started if the console was idle.
    fn feed(&self) -> Arc<Feed> {
        let mut slot = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(feed) if feed.is_running() => feed.clone(),
            _ => {
                let feed = Feed::start(&self.state.config);
                *slot = Some(feed.clone());
                feed
            }
        }
    }

    fn authorized(&self, request: &http::request::Parts) -> bool {
        let token = self.state.config.console.token.as_bytes();
        if token.is_empty() {
            return true;
        }
        let bearer = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().as_bytes().to_vec());
        let query = request.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.as_bytes().to_vec())
        });
        [bearer, query].into_iter().flatten().any(|given| same_secret(&given, token))
    }

    fn stats(&self) -> Value {
        let feed = self.feed();
        feed.touch();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let counters = stats::gateway_counters(&self.state.metrics.telemetry().render_prometheus());
        let view = feed.lock();
        json!({
            "nowMs": now_ms,
            "reading": view.reading,
            "error": view.error,
            "sampled": view.sampled,
            "enricherLag": view.enricher_lag,
            "rejectedKept": view.recent[Lane::Rejected as usize].len(),
            "rates": view.rates.to_json(now_ms),
            "products": view.products.top(10),
            "counters": counters,
        })
    }

    /// The sources with their write keys and where the gateway takes events: what the install
    /// snippets need.
    fn sources(&self, request: &http::request::Parts) -> Value {
        let config = &self.state.config;
        let gateway = if !config.http.public_url.is_empty() {
            config.http.public_url.trim_end_matches('/').to_owned()
        } else if self.gateway_addr.ip().is_unspecified() {
            // Bound to every address: the host the operator reached the console by is likely
            // one the gateway answers on too.
            let host = request.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
            format!("http://{host}:{}", self.gateway_addr.port())
        } else {
            format!("http://{}", self.gateway_addr)
        };
        let mut sources: Vec<Value> = self
            .state
            .sources
            .entries()
            .into_iter()
            .map(|(key, source)| json!({"name": &*source.name, "writeKey": key, "allowedOrigins": source.allowed_origins()}))
            .collect();
        sources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        json!({"gateway": gateway, "sources": sources})
    }
}

impl AdminRoutes for Console {
    fn route(&self, request: &http::request::Parts) -> Option<AdminAnswer> {
        let path = request.uri.path();
        let own = path.strip_prefix("/console").filter(|rest| rest.is_empty() || rest.starts_with('/'))?;
        let response = if request.method != Method::GET && request.method != Method::HEAD {
            json_answer(StatusCode::METHOD_NOT_ALLOWED, &json!({"error": "method_not_allowed"}))
        } else if !self.authorized(request) {
            let mut response = json_answer(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "unauthorized", "message": "the console needs `Authorization: Bearer TOKEN` or `?token=TOKEN` (console.token)"}),
            );
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        } else {
            match own {
                "" | "/" => page(),
                "/events" => {
                    let filter = Filter::from_query(request.uri.query().unwrap_or_default());
                    let body = sse::open(self.feed(), filter, self.closing.subscribe());
                    let mut response = Response::new(body.boxed());
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    response
                }
                "/stats" => json_answer(StatusCode::OK, &self.stats()),
                "/sources" => json_answer(StatusCode::OK, &self.sources(request)),
                _ => json_answer(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
            }
        };
        Some(Box::pin(std::future::ready(response)))
    }
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
fn same_secret(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len() && given.iter().zip(token).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The page, with its script and styles inlined: one response, so the token guards all of it.
fn page() -> Response<AdminBody> {
    let mut response = Response::new(Full::new(page_bytes().clone()).boxed());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn page_bytes() -> &'static Bytes {
    static PAGE: OnceLock<Bytes> = OnceLock::new();
    PAGE.get_or_init(|| {
        let text =
            |name: &str| Assets::get(name).map(|f| String::from_utf8_lossy(&f.data).into_owned()).unwrap_or_default();
        let script = text("app.js").replace("</script", "<\\/script");
        Bytes::from(text("index.html").replacen("/*app.css*/", &text("app.css"), 1).replacen("/*app.js*/", &script, 1))
    })
}

fn json_answer(status: StatusCode, body: &Value) -> Response<AdminBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc") && !same_secret(b"ab", b"abc"));
        let page = String::from_utf8_lossy(page_bytes());
        assert!(page.contains("new EventSource") && page.contains("--accent"), "script and styles are inlined");
        assert_eq!(page.matches("</script>").count(), 1, "only the page's own script tag closes");
        assert!(!page.contains("/*app.js*/") && !page.contains("/*app.css*/"), "script and styles are inlined");
    }
}
