//! Edge fields that come from the connection rather than the body: client IP and user agent.

use std::net::{IpAddr, SocketAddr};

use clickstream_schema::Connection;
use http::{header, HeaderMap};

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

    /// What the connection adds to each event: `context.ip` and `context.userAgent` where the
    /// event has none, the IP anonymized if configured (see [`Connection`]).
    pub fn connection(&self) -> Connection<'_> {
        Connection { ip: self.ip, user_agent: self.user_agent.as_deref(), anonymize_ip: self.anonymize }
    }
}
