//! The scan's tokens: strings (escapes and control characters checked, a word at a time),
//! numbers (within i64/u64, finite as f64) and literals, as simd-json accepts them.

use super::{fail, Scan, Scanner};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = ONES << 7;

/// The high bit of each byte of `word` (read little-endian) that may be a quote, a backslash
/// or a control character: the classic zero-byte and less-than tests. A borrow only carries
/// upwards, so the lowest bit set marks the first such byte exactly; those above it may be
/// false alarms.
fn specials(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x;
    (zero_in(quote) | zero_in(backslash) | (word.wrapping_sub(ONES * 0x20) & !word)) & HIGHS
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

impl Scanner<'_> {
    /// The index just past the string at `at` (its opening quote), checked: no raw control
    /// characters, only JSON's escapes, `\u` surrogates in pairs. UTF-8 is checked up front.
    fn string(&self, at: usize) -> Scan<usize> {
        self.string_escaped(at).map(|(end, _)| end)
    }

    /// As [`Self::string`], and whether the string has an escape. Inlined: most strings are
    /// a few words long, where a call's set-up costs as much as the scan.
    #[inline(always)]
    pub(super) fn string_escaped(&self, at: usize) -> Scan<(usize, bool)> {
        let bytes = self.bytes;
        let mut i = at + 1;
        let mut escaped = false;
        loop {
            // Eight bytes at a time, straight to the first that ends the run of plain text.
            while let Some(chunk) = bytes.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
                let found = specials(u64::from_le_bytes(chunk));
                if found != 0 {
                    i += found.trailing_zeros() as usize / 8;
                    break;
                }
                i += 8;
            }
            match self.byte(i) {
                Some(b'"') => return Ok((i + 1, escaped)),
                Some(b'\\') => (i, escaped) = (self.escape(i)?, true),
                Some(0..=0x1f) => return fail(&"control character in a string", i),
                Some(_) => i += 1,
                None => return fail(&"unterminated string", at),
            }
        }
    }

    /// The index just past the escape at `at` (its backslash).
    fn escape(&self, at: usize) -> Scan<usize> {
        match self.byte(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
            Some(b'u') => {
                let Some(unit) = hex4(self.bytes, at + 2) else { return fail(&"invalid \\u escape", at) };
                match unit {
                    0xd800..=0xdbff => {
                        let low = (self.byte(at + 6) == Some(b'\\') && self.byte(at + 7) == Some(b'u'))
                            .then(|| hex4(self.bytes, at + 8))
                            .flatten();
                        match low {
                            Some(0xdc00..=0xdfff) => Ok(at + 12),
                            _ => fail(&"unpaired surrogate in a \\u escape", at),
                        }
                    }
                    0xdc00..=0xdfff => fail(&"unpaired surrogate in a \\u escape", at),
                    _ => Ok(at + 6),
                }
            }
            _ => fail(&"invalid escape in a string", at),
        }
    }

    fn digits(&self, mut at: usize) -> usize {
        while self.byte(at).is_some_and(|b| b.is_ascii_digit()) {
            at += 1;
        }
        at
    }

    /// The index just past the number at `at`. As simd-json: an integer must fit an i64 or a
    /// u64, and any number must be finite as an f64.
    fn number(&self, at: usize) -> Scan<usize> {
        let negative = self.byte(at) == Some(b'-');
        let int_start = at + usize::from(negative);
        let mut i = match self.byte(int_start) {
            Some(b'0') => int_start + 1,
            Some(b'1'..=b'9') => self.digits(int_start + 1),
            _ => return fail(&"invalid number", at),
        };
        let int_end = i;
        let mut float = false;
        if self.byte(i) == Some(b'.') {
            let end = self.digits(i + 1);
            if end == i + 1 {
                return fail(&"invalid number", at);
            }
            (i, float) = (end, true);
        }
        let mut exponent = false;
        if matches!(self.byte(i), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.byte(i + 1), Some(b'+' | b'-')));
            let end = self.digits(i + 1 + sign);
            if end == i + 1 + sign {
                return fail(&"invalid number", at);
            }
            (i, float, exponent) = (end, true, true);
        }
        if matches!(self.byte(i), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) {
            return fail(&"invalid number", at);
        }
        let text = self.text.get(at..i).unwrap_or_default();
        if float {
            // Only an exponent or some 300 digits reach past f64's range.
            if (exponent || i - at > 300) && !text.parse::<f64>().is_ok_and(f64::is_finite) {
                return fail(&"number out of range", at);
            }
        } else if int_end - int_start >= 19 {
            let fits = if negative { text.parse::<i64>().is_ok() } else { text.parse::<u64>().is_ok() };
            if !fits {
                return fail(&"integer out of range", at);
            }
        }
        Ok(i)
    }

    fn literal(&self, at: usize, word: &'static [u8]) -> Scan<usize> {
        if self.bytes.get(at..at + word.len()) == Some(word) {
            Ok(at + word.len())
        } else {
            fail(&"invalid literal", at)
        }
    }

    #[inline(always)]
    pub(super) fn scalar(&self, at: usize) -> Scan<usize> {
        match self.byte(at) {
            Some(b'"') => self.string(at),
            Some(b't') => self.literal(at, b"true"),
            Some(b'f') => self.literal(at, b"false"),
            Some(b'n') => self.literal(at, b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(at),
            _ => fail(&"expected a JSON value", at),
        }
    }
}
