//! GeoIP enrichment from a MaxMind-format database the operator supplies, and IP masking
//! with configurable prefixes (the lookup always happens first).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

/// An opened `.mmdb` file.
#[derive(Debug)]
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    names: Option<BTreeMap<&'a str, &'a str>>,
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow)]
    country: Option<Names<'a>>,
    #[serde(borrow)]
    subdivisions: Option<Vec<Names<'a>>>,
    #[serde(borrow)]
    city: Option<Names<'a>>,
}

impl GeoIp {
    pub fn open(path: &Path) -> Result<Self, String> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| Self { reader })
            .map_err(|e| format!("cannot open GeoIP database {}: {e}", path.display()))
    }

    /// Country ISO code, region (first subdivision) ISO code and English city name; null when
    /// the address is not in the database.
    pub fn lookup(&self, ip: IpAddr) -> Value {
        let Ok(Some(record)) = self.reader.lookup::<CityRecord<'_>>(ip) else { return Value::Null };
        json!({
            "country": record.country.as_ref().and_then(|c| c.iso_code),
            "region": record.subdivisions.as_ref().and_then(|s| s.first()).and_then(|s| s.iso_code),
            "city": record.city.as_ref().and_then(|c| c.names.as_ref()).and_then(|m| m.get("en").copied()),
        })
    }
}

/// Keeps the first `v4_bits` / `v6_bits` of the address and zeroes the rest.
pub fn mask_ip(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4_bits.min(32));
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => mask_ip(IpAddr::V4(v4), v4_bits, v6_bits),
            None => {
                let bits = u32::from(v6_bits.min(128));
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(ip: &str, v4: u8, v6: u8) -> String {
        mask_ip(ip.parse().expect("ip"), v4, v6).to_string()
    }

    #[test]
    fn masks_by_prefix() {
        assert_eq!(masked("203.0.113.77", 24, 48), "203.0.113.0");
        assert_eq!(masked("203.0.113.77", 16, 48), "203.0.0.0");
        assert_eq!(masked("203.0.113.77", 32, 48), "203.0.113.77");
        assert_eq!(masked("2001:db8:abcd:12:1:2:3:4", 24, 48), "2001:db8:abcd::");
        assert_eq!(masked("2001:db8:abcd:12:1:2:3:4", 24, 32), "2001:db8::");
        assert_eq!(masked("::ffff:198.51.100.9", 24, 48), "198.51.100.0");
    }

    #[test]
    fn a_missing_database_is_a_clear_error() {
        let error = GeoIp::open(Path::new("/nonexistent/city.mmdb")).expect_err("missing");
        assert!(error.contains("/nonexistent/city.mmdb"), "{error}");
    }
}
