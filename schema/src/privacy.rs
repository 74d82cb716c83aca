//! IP anonymization: keep enough of an address for geography, drop what identifies a person.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Zeroes the last octet of an IPv4 address and everything past the /48 prefix of an IPv6 one.
pub fn anonymize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return anonymize_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_loses_last_octet() {
        let ip: IpAddr = "203.0.113.77".parse().expect("ip");
        assert_eq!(anonymize_ip(ip).to_string(), "203.0.113.0");
    }

    #[test]
    fn ipv6_keeps_only_slash_48() {
        let ip: IpAddr = "2001:db8:abcd:12:1:2:3:4".parse().expect("ip");
        assert_eq!(anonymize_ip(ip).to_string(), "2001:db8:abcd::");
    }
}
