//! Address ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a bare address), as the
//! config names the proxies it trusts.

use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One address range; a bare address is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)), 32, self.prefix) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(ip), 128, self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

/// `bits` of which the first `prefix` are kept.
fn masked(value: u128, width: u8, prefix: u8) -> u128 {
    match width - prefix {
        0 => value,
        host if host >= 128 => 0,
        host => value >> host << host,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let ip: IpAddr = address.parse().map_err(|_| format!("`{text}` is not an IP address or CIDR range"))?;
        let ip = ip.to_canonical();
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {width}"))?,
        };
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::V4((masked(u128::from(u32::from(v4)), 32, prefix) as u32).into()),
            IpAddr::V6(v6) => IpAddr::V6(masked(u128::from(v6), 128, prefix).into()),
        };
        Ok(Self { network, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> Self {
        format!("{}/{}", cidr.network, cidr.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let private: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(private.contains(ip("10.200.3.4")));
        assert!(private.contains(ip("::ffff:10.1.1.1")), "an IPv4-mapped address is its IPv4 address");
        assert!(!private.contains(ip("11.0.0.1")));
        assert!(!private.contains(ip("2001:db8::1")));
        let one: Cidr = "192.0.2.7".parse().expect("cidr");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().expect("cidr");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains(ip("203.0.113.1")));
        assert_eq!(String::from("10.9.8.7/8".parse::<Cidr>().expect("cidr")), "10.0.0.0/8");
    }

    #[test]
    fn bad_ranges_are_refused_with_the_text() {
        assert!("10.0.0.0/33".parse::<Cidr>().expect_err("prefix").contains("0 to 32"));
        assert!("proxy.local".parse::<Cidr>().expect_err("name").contains("proxy.local"));
        assert!("::/129".parse::<Cidr>().is_err());
    }
}
