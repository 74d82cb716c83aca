//! User-agent enrichment: browser, OS, device class and whether the client is a bot.

use serde_json::{json, Value};

/// Tokens that mark automated clients woothee does not list as crawlers.
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

/// Distinct user agents remembered; a site's traffic repeats a few thousand strings, so
/// nearly every event skips the parse.
const CACHED_AGENTS: u64 = 20_000;

/// `describe`, remembering recent answers.
#[derive(Debug)]
pub struct UserAgents {
    cache: moka::sync::Cache<String, Value>,
}

impl Default for UserAgents {
    fn default() -> Self {
        Self { cache: moka::sync::Cache::new(CACHED_AGENTS) }
    }
}

impl UserAgents {
    pub fn describe(&self, user_agent: &str) -> Value {
        if let Some(known) = self.cache.get(user_agent) {
            return known;
        }
        let described = describe(user_agent);
        self.cache.insert(user_agent.to_owned(), described.clone());
        described
    }
}

/// Parses a `User-Agent` header into the `userAgent` enrichment.
pub fn describe(user_agent: &str) -> Value {
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let lower = user_agent.to_ascii_lowercase();
    let token_bot = BOT_TOKENS.iter().any(|t| lower.contains(t));
    let (browser, version, os, category) = match &parsed {
        Some(r) => (r.name, r.version, r.os, r.category),
        None => ("UNKNOWN", "UNKNOWN", "UNKNOWN", "UNKNOWN"),
    };
    let is_bot = category == "crawler" || token_bot;
    let device_class = match category {
        _ if is_bot => "bot",
        "pc" => "desktop",
        "smartphone" if lower.contains("ipad") || (lower.contains("android") && !lower.contains("mobile")) => "tablet",
        "smartphone" | "mobilephone" => "mobile",
        "appliance" => "appliance",
        _ => "unknown",
    };
    json!({
        "browser": known(browser),
        "browserVersion": known(version),
        "os": known(os),
        "deviceClass": device_class,
        "isBot": is_bot,
    })
}

fn known(text: &str) -> Value {
    if text.is_empty() || text == "UNKNOWN" {
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
        assert_eq!(chrome["os"], "Windows 10");
        assert_eq!(chrome["deviceClass"], "desktop");
        assert_eq!(chrome["isBot"], false);

        let iphone = describe("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone["os"], "iPhone");
        assert_eq!(iphone["deviceClass"], "mobile");

        let ipad = describe("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1");
        assert_eq!(ipad["deviceClass"], "tablet");

        let googlebot = describe("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(googlebot["isBot"], true);
        assert_eq!(googlebot["deviceClass"], "bot");

        let headless = describe("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36");
        assert_eq!(headless["isBot"], true);

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
}
