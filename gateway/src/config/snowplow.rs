//! `[snowplow]`: which source a Snowplow tracker's app id sends to, and the collector cookie
//! (`sp`, the network user id) that the gateway sets in place of Snowplow's collector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The Snowplow tracker protocol (`POST /com.snowplowanalytics.snowplow/tp2`, `GET /i`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SnowplowConfig {
    /// App id (the tracker's `appId`, sent as `aid`) → name of the source its events belong
    /// to, such as `{ "shop-web" = "web" }`. An app id not listed here is taken as a write key
    /// itself, and a key in `X-Write-Key` or Basic auth wins over both. Read at start.
    pub app_sources: BTreeMap<String, String>,
    /// Set the network user id cookie when a browser has none, as Snowplow's collector does,
    /// so one browser keeps one id across sites that send to this gateway. Off: the cookie is
    /// still read when present, but never set.
    pub network_cookie: bool,
    /// Name of the network user id cookie (Snowplow's collector calls it `sp`).
    pub cookie_name: String,
    /// How long the network user id cookie lives, in days.
    pub cookie_max_age_days: u32,
    /// The cookie's `Domain`, such as `.example.com` to share it across subdomains. Empty:
    /// the gateway's own host only.
    pub cookie_domain: String,
}

pub const DEFAULT_SNOWPLOW_COOKIE_NAME: &str = "sp";
/// A year, as Snowplow's collector sets it.
pub const DEFAULT_SNOWPLOW_COOKIE_MAX_AGE_DAYS: u32 = 365;

impl Default for SnowplowConfig {
    fn default() -> Self {
        Self {
            app_sources: BTreeMap::new(),
            network_cookie: true,
            cookie_name: DEFAULT_SNOWPLOW_COOKIE_NAME.to_owned(),
            cookie_max_age_days: DEFAULT_SNOWPLOW_COOKIE_MAX_AGE_DAYS,
            cookie_domain: String::new(),
        }
    }
}
