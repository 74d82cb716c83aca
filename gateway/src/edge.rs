//! Edge fields that come from the connection rather than the body: client IP and user agent.

use std::net::{IpAddr, SocketAddr};

use clickstream_schema::Connection;
use http::{header, HeaderMap};

use crate::config::{Cidr, GatewayConfig};

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
        let peer_ip = peer.ip().to_canonical();
        let ip = match proxy_header {
            "" => peer_ip,
            name => {
                let hops = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
                client_ip(peer_ip, hops, &config.http.trusted_proxies)
            }
        };
        Self {
            ip,
            user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
            anonymize: config.privacy.anonymize_ip,
        }
    }

    /// The client's address: as the trusted proxies forwarded it, else the socket's.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// What the connection adds to each event: `context.ip` and `context.userAgent` where the
    /// event has none, the IP anonymized if configured (see [`Connection`]).
    pub fn connection(&self) -> Connection<'_> {
        Connection { ip: self.ip, user_agent: self.user_agent.as_deref(), anonymize_ip: self.anonymize }
    }
}

/// The client behind a chain of proxies: walking the forwarded hops from the right (the one the
/// nearest proxy wrote), the first address that is not a trusted proxy. A peer that is not
/// trusted itself, or a hop that is not an address, ends the walk at what is known so far: any
/// hop left of an untrusted one may be the client's own invention.
fn client_ip<'h>(peer: IpAddr, hops: impl DoubleEndedIterator<Item = &'h str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !trusted.is_empty() && !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in hops.rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn ranges(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|r| r.parse().expect("cidr")).collect()
    }

    #[test]
    fn a_forged_left_hop_does_not_become_the_client() {
        let proxies = ranges(&["10.0.0.0/8"]);
        // The client sent `X-Forwarded-For: 1.2.3.4`; the proxy appended the real address.
        let forged = ["1.2.3.4", " 203.0.113.9"];
        assert_eq!(client_ip(ip("10.0.0.2"), forged.into_iter(), &proxies), ip("203.0.113.9"));
        // Two trusted hops (a load balancer, then an ingress) are skipped.
        let chain = ["6.6.6.6", "203.0.113.9", "10.1.0.5"];
        assert_eq!(client_ip(ip("10.0.0.2"), chain.into_iter(), &proxies), ip("203.0.113.9"));
        // With no list, only the peer is trusted: the right-most hop is the client.
        assert_eq!(client_ip(ip("10.0.0.2"), chain.into_iter(), &[]), ip("10.1.0.5"));
    }

    #[test]
    fn an_untrusted_peer_or_a_bad_hop_is_not_followed() {
        let proxies = ranges(&["10.0.0.0/8"]);
        let claimed = ["198.51.100.1"];
        assert_eq!(client_ip(ip("192.0.2.50"), claimed.into_iter(), &proxies), ip("192.0.2.50"), "not a proxy");
        let garbage = ["203.0.113.9", "unknown", "10.1.0.5"];
        assert_eq!(client_ip(ip("10.0.0.2"), garbage.into_iter(), &proxies), ip("10.1.0.5"));
        let all_trusted = ["10.3.3.3", "10.1.0.5"];
        assert_eq!(client_ip(ip("10.0.0.2"), all_trusted.into_iter(), &proxies), ip("10.3.3.3"));
        assert_eq!(client_ip(ip("10.0.0.2"), std::iter::empty(), &proxies), ip("10.0.0.2"));
    }
}
