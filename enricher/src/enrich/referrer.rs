//! Referrer enrichment: where a visit came from, as a medium (search, social, email, internal,
//! direct, other) and a named source.

use serde_json::{json, Value};

/// Hosts, matched by suffix on a label boundary, with their medium and source name. Email
/// webmail hosts come first because `mail.google.com` must not read as Google search.
const KNOWN_HOSTS: &[(&str, &str, &str)] = &[
    ("mail.google.com", "email", "Gmail"),
    ("outlook.live.com", "email", "Outlook"),
    ("outlook.office.com", "email", "Outlook"),
    ("mail.yahoo.com", "email", "Yahoo! Mail"),
    ("mail.proton.me", "email", "Proton Mail"),
    ("google.com", "search", "Google"),
    ("bing.com", "search", "Bing"),
    ("duckduckgo.com", "search", "DuckDuckGo"),
    ("search.yahoo.com", "search", "Yahoo!"),
    ("baidu.com", "search", "Baidu"),
    ("yandex.ru", "search", "Yandex"),
    ("yandex.com", "search", "Yandex"),
    ("ecosia.org", "search", "Ecosia"),
    ("search.brave.com", "search", "Brave"),
    ("qwant.com", "search", "Qwant"),
    ("facebook.com", "social", "Facebook"),
    ("t.co", "social", "Twitter"),
    ("twitter.com", "social", "Twitter"),
    ("x.com", "social", "Twitter"),
    ("linkedin.com", "social", "LinkedIn"),
    ("lnkd.in", "social", "LinkedIn"),
    ("instagram.com", "social", "Instagram"),
    ("reddit.com", "social", "Reddit"),
    ("pinterest.com", "social", "Pinterest"),
    ("youtube.com", "social", "YouTube"),
    ("tiktok.com", "social", "TikTok"),
    ("news.ycombinator.com", "social", "Hacker News"),
    ("bsky.app", "social", "Bluesky"),
    ("threads.net", "social", "Threads"),
];

/// Classifies `referrer` relative to the page it led to.
pub fn classify(referrer: Option<&str>, page_url: Option<&str>) -> Value {
    let Some(referrer) = referrer.map(str::trim).filter(|r| !r.is_empty()) else {
        return json!({ "medium": "direct", "source": Value::Null, "host": Value::Null });
    };
    let Some(host) = host_of(referrer) else {
        return json!({ "medium": "other", "source": Value::Null, "host": Value::Null });
    };
    let page_host = page_url.and_then(host_of);
    let (medium, source) = if page_host.as_deref().is_some_and(|p| bare(p) == bare(&host)) {
        ("internal", Value::Null)
    } else if let Some((_, medium, source)) = KNOWN_HOSTS.iter().find(|(known, _, _)| on_domain(&host, known)) {
        (*medium, Value::String((*source).to_owned()))
    } else if host.split('.').any(|label| label == "google") {
        // Country search domains: google.de, google.co.uk.
        ("search", Value::String("Google".to_owned()))
    } else {
        ("other", Value::String(host.clone()))
    };
    json!({ "medium": medium, "source": source, "host": host })
}

fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_ascii_lowercase)
}

fn bare(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

fn on_domain(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|prefix| prefix.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn medium_and_source(referrer: Option<&str>) -> (String, Value) {
        let v = classify(referrer, Some("https://shop.example.com/p/1"));
        (v["medium"].as_str().unwrap_or_default().to_owned(), v["source"].clone())
    }

    #[test]
    fn each_medium() {
        assert_eq!(medium_and_source(None), ("direct".into(), Value::Null));
        assert_eq!(medium_and_source(Some("")), ("direct".into(), Value::Null));
        assert_eq!(medium_and_source(Some("https://www.google.com/search?q=mug")), ("search".into(), json!("Google")));
        assert_eq!(medium_and_source(Some("https://www.google.co.uk/")), ("search".into(), json!("Google")));
        assert_eq!(medium_and_source(Some("https://duckduckgo.com/")), ("search".into(), json!("DuckDuckGo")));
        assert_eq!(medium_and_source(Some("https://l.facebook.com/l.php")), ("social".into(), json!("Facebook")));
        assert_eq!(medium_and_source(Some("https://t.co/abc")), ("social".into(), json!("Twitter")));
        assert_eq!(medium_and_source(Some("https://mail.google.com/mail/u/0")), ("email".into(), json!("Gmail")));
        assert_eq!(medium_and_source(Some("https://shop.example.com/cart")), ("internal".into(), Value::Null));
        assert_eq!(
            medium_and_source(Some("https://blog.example.org/post")),
            ("other".into(), json!("blog.example.org"))
        );
        // A host that merely ends in a known name is not that site.
        assert_eq!(medium_and_source(Some("https://notx.com/")), ("other".into(), json!("notx.com")));
        assert_eq!(medium_and_source(Some("not a url")).0, "other");
    }
}
