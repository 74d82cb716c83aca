//! Sources and their write keys: who may send, under which name, from which origins.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
    /// Browser origins that may send with this source's key.
    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }

    /// Browsers send `Origin`; server SDKs do not, and are not checked.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), GatewayError> {
        match origin {
            None => Ok(()),
            Some(origin) if self.allowed_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin)) => Ok(()),
            Some(origin) => Err(GatewayError::OriginNotAllowed(origin.to_owned())),
        }
    }
}

/// Write key → source. Replaced whole on reload; a request keeps the source it looked up.
#[derive(Debug, Default)]
pub struct SourceRegistry {
    by_key: RwLock<Arc<HashMap<String, Arc<Source>>>>,
    /// Source name → source, for protocols whose configuration names a source rather than a
    /// key (Snowplow's `app_sources`). Where several keys share a name (a key being rotated),
    /// any one of them stands for it.
    by_name: RwLock<Arc<HashMap<Arc<str>, Arc<Source>>>>,
}

impl SourceRegistry {
    pub fn new(configs: &[SourceConfig]) -> Self {
        let by_key = index(configs);
        let by_name = RwLock::new(Arc::new(by_name(&by_key)));
        Self { by_key: RwLock::new(Arc::new(by_key)), by_name }
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.read().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    pub fn lookup(&self, write_key: &str) -> Result<Arc<Source>, GatewayError> {
        let by_key = self.by_key.read().unwrap_or_else(|p| p.into_inner());
        by_key.get(write_key).cloned().ok_or(GatewayError::UnknownWriteKey)
    }

    /// The source of that name, when some key has it.
    pub fn lookup_name(&self, name: &str) -> Result<Arc<Source>, GatewayError> {
        let by_name = self.by_name.read().unwrap_or_else(|p| p.into_inner());
        by_name.get(name).cloned().ok_or_else(|| GatewayError::UnknownSource(name.to_owned()))
    }

    /// Puts a new set of sources in force: keys not in it stop working at once.
    pub fn replace(&self, configs: &[SourceConfig]) {
        let by_key = index(configs);
        *self.by_name.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(by_name(&by_key));
        *self.by_key.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(by_key);
    }

    /// Every write key with its source, for the console's install settings.
    pub fn entries(&self) -> Vec<(String, Arc<Source>)> {
        let by_key = self.by_key.read().unwrap_or_else(|p| p.into_inner());
        by_key.iter().map(|(key, source)| (key.clone(), source.clone())).collect()
    }

    pub fn len(&self) -> usize {
        self.by_key.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn index(configs: &[SourceConfig]) -> HashMap<String, Arc<Source>> {
    configs
        .iter()
        .map(|c| {
            let source = Source { name: Arc::from(c.name.as_str()), allowed_origins: c.allowed_origins.clone() };
            (c.write_key.clone(), Arc::new(source))
        })
        .collect()
}

fn by_name(by_key: &HashMap<String, Arc<Source>>) -> HashMap<Arc<str>, Arc<Source>> {
    by_key.values().map(|source| (source.name.clone(), source.clone())).collect()
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
        registry.replace(&[SourceConfig { name: "app".into(), write_key: "k2".into(), allowed_origins: vec![] }]);
        assert!(matches!(registry.lookup("k"), Err(GatewayError::UnknownWriteKey)), "old keys stop working");
        assert_eq!(&*registry.lookup("k2").expect("new key").name, "app");
        assert_eq!(&*registry.lookup_name("app").expect("by name").name, "app");
        assert!(matches!(registry.lookup_name("web"), Err(GatewayError::UnknownSource(_))), "old names too");
    }
}
