//! Referrer enrichment: where a visit came from, as a medium (search, social, email, internal,
//! direct, other) and a named source.

use super::url_parts::UrlParts;
use super::write_str;

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

/// Where a visit came from.
#[derive(Debug, Clone, PartialEq)]
struct Referrer {
    medium: &'static str,
    source: Option<String>,
    host: Option<String>,
}

fn classify_parts(referrer: Option<&str>, page_host: Option<&str>) -> Referrer {
    let Some(referrer) = referrer.map(str::trim).filter(|r| !r.is_empty()) else {
        return Referrer { medium: "direct", source: None, host: None };
    };
    let Some(host) = host_of(referrer) else { return Referrer { medium: "other", source: None, host: None } };
    let (medium, source) = if page_host.is_some_and(|p| bare(p) == bare(&host)) {
        ("internal", None)
    } else if let Some((_, medium, source)) = KNOWN_HOSTS.iter().find(|(known, _, _)| on_domain(&host, known)) {
        (*medium, Some((*source).to_owned()))
    } else if host.split('.').any(|label| label == "google") {
        // Country search domains: google.de, google.co.uk.
        ("search", Some("Google".to_owned()))
    } else {
        ("other", Some(host.clone()))
    };
    Referrer { medium, source, host: Some(host) }
}

/// Classifies `referrer` relative to the page it led to.
#[cfg(test)]
pub fn classify(referrer: Option<&str>, page_url: Option<&str>) -> serde_json::Value {
    let page = page_url.and_then(UrlParts::parse);
    let mut out = Vec::new();
    classify_into(referrer, page.as_ref(), &mut out);
    serde_json::from_slice(&out).unwrap_or_default()
}

/// Writes the `referrer` enrichment, `{"medium":..,"source":..,"host":..}`, for `referrer`
/// relative to the page it led to.
pub fn classify_into(referrer: Option<&str>, page_url: Option<&UrlParts<'_>>, out: &mut Vec<u8>) {
    let page_host = page_url.and_then(|page| page.host.as_deref());
    let Referrer { medium, source, host } = classify_parts(referrer, page_host);
    let text_or_null = |out: &mut Vec<u8>, text: Option<&str>| match text {
        Some(text) => write_str(out, text),
        None => out.extend_from_slice(b"null"),
    };
    out.extend_from_slice(b"{\"medium\":");
    write_str(out, medium);
    out.extend_from_slice(b",\"source\":");
    text_or_null(out, source.as_deref());
    out.extend_from_slice(b",\"host\":");
    text_or_null(out, host.as_deref());
    out.push(b'}');
}

fn host_of(url: &str) -> Option<String> {
    UrlParts::parse(url)?.host.map(|host| host.into_owned())
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
    use serde_json::{json, Value};

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
