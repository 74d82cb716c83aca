//! User-agent enrichment: browser, OS, device, device class and whether the client is a bot,
//! from the ua-parser project's shared rules (uap-core's `regexes.yaml`, compiled in).

use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};

/// uap-core's rules (Apache-2.0; see `enricher/data/uap-core/LICENSE`), shipped with the
/// `ua-parser` crate's package and copied here so the binary needs no file at run time.
const REGEXES: &str = include_str!("../../data/uap-core/regexes.yaml");

/// Compiled once per process: building the extractor compiles about a thousand regexes.
fn extractor() -> &'static ua_parser::Extractor<'static> {
    static EXTRACTOR: OnceLock<ua_parser::Extractor<'static>> = OnceLock::new();
    EXTRACTOR.get_or_init(|| {
        let regexes: ua_parser::Regexes<'static> =
            serde_yaml::from_str(REGEXES).unwrap_or_else(|e| unreachable!("the bundled uap-core rules parse: {e}"));
        ua_parser::Extractor::try_from(regexes)
            .unwrap_or_else(|e| unreachable!("the bundled uap-core rules compile: {e}"))
    })
}

/// Tokens that mark automated clients the rules do not list as spiders.
const BOT_TOKENS: [&str; 12] = [
    "bot",
    "spider",
    "crawl",
    "headlesschrome",
    "lighthouse",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "okhttp",
    "phantomjs",
];

/// Operating systems of phones and tablets, as uap-core names them.
const MOBILE_OS: [&str; 9] =
    ["iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Symbian OS", "Tizen", "HarmonyOS"];
/// Operating systems of desktops and laptops.
const DESKTOP_OS: [&str; 11] = [
    "Windows",
    "Mac OS X",
    "Linux",
    "Ubuntu",
    "Chrome OS",
    "Fedora",
    "Debian",
    "FreeBSD",
    "OpenBSD",
    "Mint",
    "Solaris",
];

/// Distinct user agents remembered; a site's traffic repeats a few thousand strings, so
/// nearly every event skips the parse.
const CACHED_AGENTS: u64 = 20_000;

/// How much of a user agent is read. Real ones are under about 300 bytes; the gateway lets
/// through up to an event's size (32 KiB). uap-core's regexes took 0.76 ms over 32 KiB against
/// 32 µs for a Chrome agent (release build), so distinct long agents, which miss the cache,
/// made each event cost 24 times more; and as cache keys 20,000 of them would hold 640 MB.
pub const USER_AGENT_MAX_BYTES: usize = 512;

/// The part of `user_agent` that is parsed: its first [`USER_AGENT_MAX_BYTES`], cut at a
/// character boundary.
fn read_part(user_agent: &str) -> &str {
    clickstream_schema::text_prefix(user_agent, USER_AGENT_MAX_BYTES)
}

/// `describe`, remembering recent answers as their JSON text.
#[derive(Debug)]
pub struct UserAgents {
    cache: moka::sync::Cache<String, Arc<str>, foldhash::fast::RandomState>,
}

impl Default for UserAgents {
    /// Compiles the rules now, at start-up, rather than on the first event.
    fn default() -> Self {
        extractor();
        // foldhash: a lookup hashes the whole user agent, about 120 bytes, where SipHash was
        // half of moka's cost per get (callgrind).
        let cache = moka::sync::Cache::builder()
            .max_capacity(CACHED_AGENTS)
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self { cache }
    }
}

impl UserAgents {
    /// The `userAgent` enrichment of `user_agent` as JSON text.
    pub fn json(&self, user_agent: &str) -> Arc<str> {
        let user_agent = read_part(user_agent);
        if let Some(known) = self.cache.get(user_agent) {
            return known;
        }
        let described: Arc<str> = describe(user_agent).to_string().into();
        self.cache.insert(user_agent.to_owned(), described.clone());
        described
    }

    /// The `userAgent` enrichment of `user_agent`.
    #[cfg(test)]
    pub fn describe(&self, user_agent: &str) -> Value {
        serde_json::from_str(&self.json(user_agent)).unwrap_or_default()
    }
}

/// Parses a `User-Agent` header (its first [`USER_AGENT_MAX_BYTES`]) into the `userAgent`
/// enrichment.
pub fn describe(user_agent: &str) -> Value {
    let user_agent = read_part(user_agent);
    let (browser, os, device) = extractor().extract(user_agent);
    let lower = user_agent.to_ascii_lowercase();
    let spider = device.as_ref().is_some_and(|d| d.device == "Spider");
    let is_bot = spider || BOT_TOKENS.iter().any(|t| lower.contains(t));
    let os_family = os.as_ref().map(|o| o.os.as_ref()).unwrap_or_default();
    let device_family = device.as_ref().map(|d| d.device.as_ref()).unwrap_or_default();
    let device_class = if is_bot {
        "bot"
    } else if device_family.contains("iPad")
        || device_family.contains("Tablet")
        || (os_family == "Android" && !lower.contains("mobile"))
    {
        "tablet"
    } else if MOBILE_OS.contains(&os_family) {
        "mobile"
    } else if DESKTOP_OS.contains(&os_family) {
        "desktop"
    } else {
        "unknown"
    };
    let version = |parts: [Option<&str>; 3]| {
        let parts: Vec<&str> = parts.into_iter().map_while(|p| p.filter(|p| !p.is_empty())).collect();
        if parts.is_empty() {
            Value::Null
        } else {
            Value::String(parts.join("."))
        }
    };
    json!({
        "browser": browser.as_ref().map_or(Value::Null, |b| known(&b.family)),
        "browserVersion": browser.as_ref().map_or(Value::Null, |b| version([b.major, b.minor, b.patch])),
        "os": known(os_family),
        "osVersion": os.as_ref().map_or(Value::Null, |o| version([o.major.as_deref(), o.minor.as_deref(), o.patch.as_deref()])),
        "device": known(device_family),
        "deviceClass": device_class,
        "isBot": is_bot,
    })
}

/// uap-core answers "Other" where it recognises nothing.
fn known(text: &str) -> Value {
    if text.is_empty() || text == "Other" {
        Value::Null
    } else {
        Value::String(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_mobile_tablet_and_bots() {
        let chrome = describe("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
        assert_eq!(chrome["browser"], "Chrome");
        assert_eq!(chrome["browserVersion"], "120.0.0");
        assert_eq!(chrome["os"], "Windows");
        assert_eq!(chrome["osVersion"], "10");
        assert_eq!(chrome["deviceClass"], "desktop");
        assert_eq!(chrome["isBot"], false);

        let iphone = describe("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone["os"], "iOS");
        assert_eq!(iphone["device"], "iPhone");
        assert_eq!(iphone["deviceClass"], "mobile");

        let ipad = describe("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1");
        assert_eq!(ipad["deviceClass"], "tablet");

        let googlebot = describe("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(googlebot["isBot"], true);
        assert_eq!(googlebot["deviceClass"], "bot");

        let headless = describe("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36");
        assert_eq!(headless["isBot"], true);

        let pixel = describe("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36");
        assert_eq!((pixel["os"].clone(), pixel["deviceClass"].clone()), (json!("Android"), json!("mobile")));
        let galaxy_tab = describe("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
        assert_eq!(galaxy_tab["deviceClass"], "tablet");
        let safari = describe("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15");
        assert_eq!((safari["browser"].clone(), safari["os"].clone()), (json!("Safari"), json!("Mac OS X")));
        assert_eq!(safari["deviceClass"], "desktop");
        let curl = describe("curl/8.5.0");
        assert_eq!((curl["isBot"].clone(), curl["deviceClass"].clone()), (json!(true), json!("bot")));

        let unknown = describe("");
        assert_eq!(unknown["browser"], Value::Null);
        assert_eq!(unknown["deviceClass"], "unknown");
    }

    #[test]
    fn the_cache_answers_as_the_parser_does() {
        let agents = UserAgents::default();
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        let first = agents.describe(firefox);
        assert_eq!(first, describe(firefox));
        assert_eq!(first["browser"], "Firefox");
        assert_eq!(agents.describe(firefox), first);
        assert_eq!(agents.describe("curl/8.5.0")["isBot"], true);
    }

    #[test]
    fn only_the_start_of_a_long_user_agent_is_read() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        // A bot token past the cap is not seen; a multi-byte character across it is not split.
        let padded = format!("{firefox} {}é Googlebot/2.1", "x".repeat(USER_AGENT_MAX_BYTES - firefox.len() - 2));
        assert!(!padded.is_char_boundary(USER_AGENT_MAX_BYTES));
        assert_eq!(read_part(&padded).len(), USER_AGENT_MAX_BYTES - 1);
        assert_eq!(describe(&padded), describe(read_part(&padded)));
        assert_eq!(describe(&padded)["isBot"], false);
        let agents = UserAgents::default();
        assert_eq!(agents.describe(&padded)["browser"], "Firefox");
        agents.cache.run_pending_tasks();
        assert!(agents.cache.iter().all(|(key, _)| key.len() <= USER_AGENT_MAX_BYTES));
        let long_bot = format!("Googlebot/2.1 {}", "y".repeat(40_000));
        assert_eq!(describe(&long_bot)["isBot"], true);
    }
}
