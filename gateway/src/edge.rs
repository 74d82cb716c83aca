//! Edge fields that come from the connection rather than the body: client IP and user agent.

use std::net::{IpAddr, SocketAddr};

use clickstream_schema::{anonymize_ip, Event};
use http::{header, HeaderMap};
use serde_json::Value;

use crate::config::GatewayConfig;

/// What the connection says about the client, applied to each event of a request.
#[derive(Debug, Clone)]
pub struct EdgeContext {
    ip: IpAddr,
    user_agent: Option<String>,
    anonymize: bool,
}

impl EdgeContext {
    pub fn from_request(headers: &HeaderMap, peer: SocketAddr, config: &GatewayConfig) -> Self {
        let proxy_header = config.http.trusted_proxy_header.as_str();
        // Behind a trusted proxy the left-most forwarded address is the original client.
        let forwarded = (!proxy_header.is_empty())
            .then(|| headers.get(proxy_header)?.to_str().ok()?.split(',').next()?.trim().parse().ok())
            .flatten();
        Self {
            ip: forwarded.unwrap_or_else(|| peer.ip().to_canonical()),
            user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
            anonymize: config.privacy.anonymize_ip,
        }
    }

    /// The client's address: the trusted proxy's forwarded one, else the socket's.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Fills `context.ip` and `context.userAgent` where the event has none (a server SDK may
    /// send its end user's), then anonymizes the IP if configured.
    pub fn apply(&self, event: &mut Event) {
        let context = event.context_mut();
        if !context.get("ip").is_some_and(Value::is_string) {
            context.insert("ip".into(), Value::String(self.ip.to_string()));
        }
        if let Some(agent) = &self.user_agent {
            context.entry("userAgent").or_insert_with(|| Value::String(agent.clone()));
        }
        if self.anonymize {
            if let Some(Value::String(ip)) = context.get_mut("ip") {
                // An address we cannot parse cannot be anonymized, so the socket's replaces it.
                *ip = anonymize_ip(ip.parse().unwrap_or(self.ip)).to_string();
            }
        }
    }
}
