//! Decimal text as Kafka Connect's `Decimal` bytes: the unscaled value, big-endian two's
//! complement in as few bytes as hold its sign, base64 in JSON (how Debezium's `precise` mode
//! writes a `numeric`).

use base64::Engine as _;

pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub const VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";

/// `text` (`-12.5`) at `scale` fractional digits, as base64 Connect `Decimal` bytes; `None` for
/// `NaN` or text that is not a decimal. Digits past `scale` are cut, which PostgreSQL never
/// sends for a `numeric(p, s)` column.
pub fn connect_bytes(text: &str, scale: i32) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let scale = usize::try_from(scale).ok()?;
    let mut digits: Vec<u8> = whole.bytes().collect();
    digits.extend(fraction.bytes().chain(std::iter::repeat(b'0')).take(scale));
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut magnitude = magnitude_bytes(&digits);
    if negative {
        negate(&mut magnitude);
    }
    Some(base64::engine::general_purpose::STANDARD.encode(minimal(&magnitude, negative)))
}

/// Big-endian bytes of a decimal digit string, with a leading zero byte so the sign bit is free.
fn magnitude_bytes(digits: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8];
    for digit in digits {
        let mut carry = u32::from(digit - b'0');
        for byte in bytes.iter_mut().rev() {
            let value = u32::from(*byte) * 10 + carry;
            *byte = (value & 0xff) as u8;
            carry = value >> 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
        if bytes[0] & 0x80 != 0 {
            bytes.insert(0, 0);
        }
    }
    bytes
}

fn negate(bytes: &mut [u8]) {
    for byte in bytes.iter_mut() {
        *byte = !*byte;
    }
    for byte in bytes.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            break;
        }
    }
}

/// Drops leading bytes that only repeat the sign, as Java's `BigInteger.toByteArray` does.
fn minimal(bytes: &[u8], negative: bool) -> Vec<u8> {
    let filler = if negative { 0xff } else { 0x00 };
    let mut start = 0;
    while start + 1 < bytes.len() && bytes[start] == filler && (bytes[start + 1] & 0x80 != 0) == negative {
        start += 1;
    }
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_debeziums_bytes() {
        // From enricher/tests/fixtures/debezium-postgres: 19.99, 1200.00, -1.50, 12.5 and 1.250.
        assert_eq!(connect_bytes("19.99", 2).as_deref(), Some("B88="));
        assert_eq!(connect_bytes("1200.00", 2).as_deref(), Some("AdTA"));
        assert_eq!(connect_bytes("-1.50", 2).as_deref(), Some("/2o="));
        assert_eq!(connect_bytes("12.5", 1).as_deref(), Some("fQ=="));
        assert_eq!(connect_bytes("1.25", 3).as_deref(), Some("BOI="));
        assert_eq!(connect_bytes("0", 2).as_deref(), Some("AA=="));
        assert_eq!(connect_bytes("-128", 0).as_deref(), Some("gA=="));
        assert_eq!(connect_bytes("128", 0).as_deref(), Some("AIA="));
        assert_eq!(connect_bytes("NaN", 2), None);
    }
}
