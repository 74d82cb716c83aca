//! Sources and their write keys: who may send, under which name, from which origins.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use http::{header, HeaderMap};

use crate::config::SourceConfig;
use crate::error::GatewayError;

/// An authenticated sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: Arc<str>,
    allowed_origins: Vec<String>,
}

impl Source {
    /// Browsers send `Origin`; server SDKs do not, and are not checked.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), GatewayError> {
        match origin {
            None => Ok(()),
            Some(origin) if self.allowed_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin)) => Ok(()),
            Some(origin) => Err(GatewayError::OriginNotAllowed(origin.to_owned())),
        }
    }
}

/// Write key → source.
#[derive(Debug, Clone, Default)]
pub struct SourceRegistry {
    by_key: HashMap<String, Source>,
}

impl SourceRegistry {
    pub fn new(configs: &[SourceConfig]) -> Self {
        let by_key = configs
            .iter()
            .map(|c| {
                let source = Source { name: Arc::from(c.name.as_str()), allowed_origins: c.allowed_origins.clone() };
                (c.write_key.clone(), source)
            })
            .collect();
        Self { by_key }
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn lookup(&self, write_key: &str) -> Result<&Source, GatewayError> {
        self.by_key.get(write_key).ok_or(GatewayError::UnknownWriteKey)
    }
}

/// The user part of `Authorization: Basic base64(user:password)`, where Segment SDKs put the key.
pub fn basic_auth_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
    (!user.is_empty()).then(|| user.to_owned())
}

/// The `X-Write-Key` header, the last place a key is looked for.
pub fn header_write_key(headers: &HeaderMap) -> Option<String> {
    headers.get("x-write-key")?.to_str().ok().map(str::to_owned).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_user_is_the_key() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic d2tfdGVzdDEyMzo=".parse().expect("header"));
        assert_eq!(basic_auth_user(&headers).as_deref(), Some("wk_test123"));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(basic_auth_user(&headers), None);
    }

    #[test]
    fn origins_are_checked_only_when_sent() {
        let registry = SourceRegistry::new(&[SourceConfig {
            name: "web".into(),
            write_key: "k".into(),
            allowed_origins: vec!["https://shop.example".into()],
        }]);
        let source = registry.lookup("k").expect("known");
        assert!(source.check_origin(None).is_ok());
        assert!(source.check_origin(Some("https://shop.example")).is_ok());
        assert!(matches!(source.check_origin(Some("https://evil.example")), Err(GatewayError::OriginNotAllowed(_))));
        assert!(matches!(registry.lookup("nope"), Err(GatewayError::UnknownWriteKey)));
    }
}
