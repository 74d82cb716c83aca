//! The two parts of a page or referrer URL the enrichments read: its host and its query.
//! Plain `http(s)` URLs, what browsers report, are split where they stand; anything the WHATWG
//! parser would rewrite (escapes in the host, IP addresses, IDNA labels, user info, spaces,
//! backslashes, non-ASCII) goes through the `url` crate, so both ways give the same parts.

use std::borrow::Cow;

/// A URL's host, lowercased, and its query without the `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub host: Option<Cow<'a, str>>,
    pub query: Option<Cow<'a, str>>,
}

impl<'a> UrlParts<'a> {
    /// Splits `url`; `None` when the `url` crate would not parse it either.
    pub fn parse(url: &'a str) -> Option<Self> {
        split_plain(url).or_else(|| {
            // The full parse costs about ten times the split (callgrind); only URLs it would
            // change take it.
            let parsed = url::Url::parse(url).ok()?;
            Some(Self {
                host: parsed.host_str().map(|host| Cow::Owned(host.to_ascii_lowercase())),
                query: parsed.query().map(|query| Cow::Owned(query.to_owned())),
            })
        })
    }

    /// The query's `key=value` pairs, decoded as `url::Url::query_pairs` decodes them.
    pub fn query_pairs(&self) -> url::form_urlencoded::Parse<'_> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
    }
}

/// Bytes a plain URL may hold anywhere: printable ASCII that no part of the WHATWG parser
/// escapes, strips or reinterprets. `%` is left to the checks of each part.
const fn plain_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && !matches!(byte, b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | b'\'')
}

/// [`plain_byte`] for every byte, looked up rather than tested in the split's loop.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = plain_byte(byte as u8);
        byte += 1;
    }
    table
};

/// The parts of a URL that the WHATWG parser would return unchanged but for the host's case;
/// `None` for anything else, which the caller hands to the full parser. One pass over the
/// bytes: the split runs for every event with a page URL.
fn split_plain(url: &str) -> Option<UrlParts<'_>> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let bytes = rest.as_bytes();
    let (mut authority_end, mut query_start, mut fragment_start) = (None, None, None);
    for (at, &byte) in bytes.iter().enumerate() {
        if !PLAIN[usize::from(byte)] {
            return None;
        }
        match byte {
            b'/' if authority_end.is_none() => authority_end = Some(at),
            b'?' if query_start.is_none() && fragment_start.is_none() => {
                authority_end.get_or_insert(at);
                query_start = Some(at + 1);
            }
            b'#' if fragment_start.is_none() => {
                authority_end.get_or_insert(at);
                fragment_start = Some(at);
            }
            _ => {}
        }
    }
    let authority = &rest[..authority_end.unwrap_or(rest.len())];
    let host = match authority.bytes().position(|b| b == b':').map(|at| (&authority[..at], &authority[at + 1..])) {
        Some((host, port))
            if port.is_empty() || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()) =>
        {
            host
        }
        Some(_) => return None,
        None => authority,
    };
    if !plain_host(host) {
        return None;
    }
    let query = query_start.map(|start| Cow::Borrowed(&rest[start..fragment_start.unwrap_or(rest.len())]));
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    };
    Some(UrlParts { host: Some(host), query })
}

/// A DNS name of letters, digits and inner hyphens, in non-empty labels, whose last label is
/// not numeric (the WHATWG parser reads `1.2.3.4` and `0x7f.1` as IPv4) and none of which is
/// an IDNA label (`xn--`, which the parser validates). One pass over the bytes: splitting on
/// `.` cost more than the rest of the split (callgrind).
fn plain_host(host: &str) -> bool {
    let bytes = host.as_bytes();
    if bytes.is_empty() || bytes.len() > 253 {
        return false;
    }
    let mut label_start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if byte == b'.' {
            if !plain_label(&bytes[label_start..at]) {
                return false;
            }
            label_start = at + 1;
        } else if !(byte.is_ascii_alphanumeric() || byte == b'-') {
            return false;
        }
    }
    let last = &bytes[label_start..];
    plain_label(last) && !last.first().is_some_and(u8::is_ascii_digit)
}

/// A label of [`plain_host`] (its bytes already checked): non-empty, no hyphen at either end,
/// not IDNA.
fn plain_label(label: &[u8]) -> bool {
    !label.is_empty()
        && label.first() != Some(&b'-')
        && label.last() != Some(&b'-')
        && !label.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"xn--"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A URL's host, query and decoded query pairs.
    type Read = (Option<String>, Option<String>, Vec<(String, String)>);

    /// What the `url` crate makes of `url`: the host lowercased, the query, its decoded pairs.
    fn by_url_crate(url: &str) -> Option<Read> {
        let parsed = url::Url::parse(url).ok()?;
        let pairs = parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Some((parsed.host_str().map(str::to_ascii_lowercase), parsed.query().map(str::to_owned), pairs))
    }

    fn by_split(url: &str) -> Option<Read> {
        let parts = UrlParts::parse(url)?;
        let pairs = parts.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Some((parts.host.map(Cow::into_owned), parts.query.map(Cow::into_owned), pairs))
    }

    #[test]
    fn plain_urls_split_where_they_stand() {
        let parts = split_plain("https://Shop.Example.com:8443/p/1?utm_source=news&x=%20y#top").expect("plain");
        assert_eq!(parts.host.as_deref(), Some("shop.example.com"));
        assert_eq!(parts.query.as_deref(), Some("utm_source=news&x=%20y"));
        assert_eq!(split_plain("http://example.com").and_then(|p| p.query), None);
        assert_eq!(split_plain("http://example.com/?").and_then(|p| p.query).as_deref(), Some(""));
    }

    #[test]
    fn what_the_parser_would_rewrite_takes_the_full_parse() {
        for url in [
            "https://127.0.0.1/",
            "https://0x7f.1/",
            "https://[::1]/",
            "https://user:pw@example.com/",
            "https://xn--mnchen-3ya.de/",
            "https://ex%41mple.com/",
            "https://example.com/a b",
            "https://example.com\\path",
            "HTTPS://example.com/",
            "https://exämple.com/",
            "https://example.com:99999/",
            "android-app://com.example/",
            " https://example.com/",
        ] {
            assert_eq!(split_plain(url), None, "{url}");
            assert_eq!(by_split(url), by_url_crate(url), "{url}");
        }
    }

    proptest! {
        /// Whichever way a URL takes, its parts are the `url` crate's.
        #[test]
        fn agrees_with_the_url_crate(
            scheme in prop::sample::select(vec!["http://", "https://", "HTTP://", "ftp://", ""]),
            // Mostly DNS-like names, which take the split, and some of anything.
            host in prop_oneof![
                3 => "[a-zA-Z0-9-]{1,8}(\\.[a-zA-Z0-9-]{1,8}){0,3}",
                1 => "[a-zA-Z0-9.%_@:\\[\\]-]{0,20}",
            ],
            port in prop::option::of("[0-9a]{0,6}"),
            path in prop_oneof![3 => "[a-zA-Z0-9/%.~-]{0,16}", 1 => "[a-zA-Z0-9/%. '\"<>\\\\^`{|}~!$&()*+,;=@-]{0,16}"],
            query in prop::option::of(prop_oneof![3 => "[a-zA-Z0-9=&%+#?/-]{0,24}", 1 => "[a-zA-Z0-9=&%+ '\"#?/é-]{0,24}"]),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            let url = format!("{scheme}{host}{port}/{path}{query}");
            prop_assert_eq!(by_split(&url), by_url_crate(&url), "{}", url);
        }
    }
}
