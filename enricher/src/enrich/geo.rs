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
pub(crate) mod tests {
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

    /// Writes a MaxMind DB (format 2.0, IPv4, 24-bit records) holding one network,
    /// 203.0.113.0/24, so the lookup is tested against a real file of the real format.
    pub(crate) fn write_test_database(path: &Path) {
        fn control(kind: u8, size: usize) -> Vec<u8> {
            let size = u8::try_from(size).expect("small");
            assert!(size < 29);
            if kind <= 7 {
                vec![(kind << 5) | size]
            } else {
                vec![size, kind - 7]
            }
        }
        fn text(value: &str) -> Vec<u8> {
            [control(2, value.len()), value.as_bytes().to_vec()].concat()
        }
        fn uint(kind: u8, value: u64, width: usize) -> Vec<u8> {
            [control(kind, width), value.to_be_bytes()[8 - width..].to_vec()].concat()
        }
        fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
            let mut out = control(7, entries.len());
            for (key, value) in entries {
                out.extend(text(key));
                out.extend(value);
            }
            out
        }
        fn array(items: &[Vec<u8>]) -> Vec<u8> {
            [control(11, items.len()), items.concat()].concat()
        }
        let prefix = u32::from(Ipv4Addr::new(203, 0, 113, 0));
        let node_count: u32 = 24;
        let data_pointer = node_count + 16;
        let mut tree = Vec::new();
        for depth in 0..24 {
            let bit = (prefix >> (31 - depth)) & 1;
            let next = if depth == 23 { data_pointer } else { depth + 1 };
            let (left, right) = if bit == 0 { (next, node_count) } else { (node_count, next) };
            tree.extend(&left.to_be_bytes()[1..]);
            tree.extend(&right.to_be_bytes()[1..]);
        }
        let data = map(&[
            ("city", map(&[("names", map(&[("en", text("Sydney"))]))])),
            ("country", map(&[("iso_code", text("AU"))])),
            ("subdivisions", array(&[map(&[("iso_code", text("NSW"))])])),
        ]);
        let metadata = map(&[
            ("binary_format_major_version", uint(5, 2, 2)),
            ("binary_format_minor_version", uint(5, 0, 2)),
            ("build_epoch", uint(9, 1, 8)),
            ("database_type", text("GeoIP2-City")),
            ("description", map(&[("en", text("clickstream test"))])),
            ("ip_version", uint(5, 4, 2)),
            ("languages", array(&[text("en")])),
            ("node_count", uint(6, u64::from(node_count), 4)),
            ("record_size", uint(5, 24, 2)),
        ]);
        let file = [tree, vec![0; 16], data, b"\xAB\xCD\xEFMaxMind.com".to_vec(), metadata].concat();
        std::fs::write(path, file).expect("write mmdb");
    }

    #[test]
    fn looks_up_country_region_and_city() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("city.mmdb");
        write_test_database(&path);
        let geo = GeoIp::open(&path).expect("opens");
        let found = geo.lookup("203.0.113.77".parse().expect("ip"));
        assert_eq!(found, json!({"country": "AU", "region": "NSW", "city": "Sydney"}));
        assert_eq!(geo.lookup("198.51.100.1".parse().expect("ip")), Value::Null);
    }

    #[test]
    fn a_missing_database_is_a_clear_error() {
        let error = GeoIp::open(Path::new("/nonexistent/city.mmdb")).expect_err("missing");
        assert!(error.contains("/nonexistent/city.mmdb"), "{error}");
    }
}
