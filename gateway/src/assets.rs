//! Static files the gateway serves: the JS tracker `GET /t.js`, embedded from `js-tracker/dist`
//! at compile time together with the gzip and brotli variants the tracker's build made.
//!
//! The variants are compressed once, at build time, at the strongest settings (gzip -9,
//! brotli 11), and committed next to `t.js`: every page view downloads these bytes, so they are
//! worth the slowest compressor, the gateway spends no CPU on them, and it needs no brotli crate.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// `t.js` is embedded under a fixed URL, so caches must come back to learn about a new build:
/// an hour fresh, then a day of serving the old copy while checking for a new one.
const CACHE_CONTROL: &str = "public, max-age=3600, stale-while-revalidate=86400";

#[derive(rust_embed::Embed)]
#[folder = "../js-tracker/dist/"]
struct Dist;

/// A content coding of the script that the gateway can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    fn file(self) -> &'static str {
        match self {
            Self::Brotli => "t.js.br",
            Self::Gzip => "t.js.gz",
            Self::Identity => "t.js",
        }
    }

    fn header(self) -> Option<HeaderValue> {
        match self {
            Self::Brotli => Some(HeaderValue::from_static("br")),
            Self::Gzip => Some(HeaderValue::from_static("gzip")),
            Self::Identity => None,
        }
    }
}

/// One encoding of the script with its strong validator.
#[derive(Debug)]
struct Representation {
    body: Bytes,
    etag: HeaderValue,
}

impl Representation {
    fn load(encoding: Encoding) -> Option<Self> {
        let file = Dist::get(encoding.file())?;
        // Each encoding has its own bytes, so its own hash: strong ETags must differ per encoding.
        let hash = file.metadata.sha256_hash();
        let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{hex}\"")).ok()?;
        Some(Self { body: Bytes::from(file.data.into_owned()), etag })
    }
}

fn representation(encoding: Encoding) -> Option<&'static Representation> {
    static BROTLI: OnceLock<Option<Representation>> = OnceLock::new();
    static GZIP: OnceLock<Option<Representation>> = OnceLock::new();
    static IDENTITY: OnceLock<Option<Representation>> = OnceLock::new();
    let cell = match encoding {
        Encoding::Brotli => &BROTLI,
        Encoding::Gzip => &GZIP,
        Encoding::Identity => &IDENTITY,
    };
    cell.get_or_init(|| Representation::load(encoding)).as_ref()
}

/// The coding to send for an `Accept-Encoding` value: the highest `q` among br and gzip (br on a
/// tie, being smaller), `*` standing in for codings not named, identity when neither is wanted.
pub(crate) fn negotiate(accept_encoding: Option<&str>) -> Encoding {
    let (mut brotli, mut gzip, mut any) = (None, None, None);
    for item in accept_encoding.unwrap_or_default().split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q=").or_else(|| param.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "br" => brotli = Some(quality),
            "gzip" | "x-gzip" => gzip = Some(quality),
            "*" => any = Some(quality),
            _ => {}
        }
    }
    let brotli = brotli.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if brotli > 0.0 && brotli >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, as RFC 9110 asks for GET).
fn matches(if_none_match: &str, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default();
    if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

/// `GET /t.js`: the tracker in the best encoding the client accepts; 304 when its cached copy
/// is current. Public and the same for every site, so any origin may read it (SRI, `crossorigin`).
pub(crate) fn tracker_script(headers: &HeaderMap) -> Response<Full<Bytes>> {
    let accept = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
    let mut encoding = negotiate(accept);
    let found = representation(encoding).or_else(|| {
        encoding = Encoding::Identity;
        representation(encoding)
    });
    let Some(script) = found else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"t.js is not built into this gateway\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| matches(tags, &script.etag));
    let mut response = if fresh {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Full::new(script.body.clone()));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Some(coding) = encoding.header() {
            headers.insert(header::CONTENT_ENCODING, coding);
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, script.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_brotli_then_gzip_and_honours_q() {
        assert_eq!(negotiate(Some("gzip, deflate, br, zstd")), Encoding::Brotli);
        assert_eq!(negotiate(Some("gzip, deflate")), Encoding::Gzip);
        assert_eq!(negotiate(Some("x-gzip")), Encoding::Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip")), Encoding::Gzip);
        assert_eq!(negotiate(Some("br;q=0.5, gzip;q=0.8")), Encoding::Gzip);
        assert_eq!(negotiate(Some("BR ; q=1")), Encoding::Brotli);
        assert_eq!(negotiate(Some("*")), Encoding::Brotli);
        assert_eq!(negotiate(Some("*;q=0.1, br;q=0")), Encoding::Gzip);
        assert_eq!(negotiate(Some("gzip;q=0, br;q=0")), Encoding::Identity);
        assert_eq!(negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(negotiate(None), Encoding::Identity);
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let etag = HeaderValue::from_static("\"0123abcd\"");
        assert!(matches("\"0123abcd\"", &etag));
        assert!(matches("W/\"0123abcd\"", &etag));
        assert!(matches("\"other\", \"0123abcd\"", &etag));
        assert!(matches("*", &etag));
        assert!(!matches("\"0123abce\"", &etag));
    }
}
