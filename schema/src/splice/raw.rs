//! Byte spans of JSON that simd-json has already validated: the members of an object and the
//! elements of an array, as slices of the client's bytes, so the splice can copy them verbatim.
//!
//! The scanner only finds boundaries; it trusts its input to be valid JSON and, if it is not,
//! stops early rather than failing (callers only scan what simd-json accepted).

use std::borrow::Cow;

/// One `"key": value` of an object, both as sent (the key with its quotes), and the key's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member<'r> {
    pub key: &'r [u8],
    pub value: &'r [u8],
    /// The key unescaped (escapes are rare, so usually borrowed).
    pub name: Cow<'r, str>,
}

/// The unescaped text of a raw JSON string (with its quotes).
pub(crate) fn key_name(raw: &[u8]) -> Cow<'_, str> {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default();
    if !inner.contains(&b'\\') {
        if let Ok(text) = std::str::from_utf8(inner) {
            return Cow::Borrowed(text);
        }
    }
    Cow::Owned(serde_json::from_slice::<String>(raw).unwrap_or_default())
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).copied().is_some_and(is_ws) {
        at += 1;
    }
    at
}

/// The index just past the string starting at `at` (which holds its opening quote).
fn string_end(bytes: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    while let Some(found) = bytes.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
        i += found;
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            _ => return i + 1,
        }
    }
    bytes.len()
}

/// The index just past the value starting at `at`.
fn value_end(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at) {
        Some(b'"') => string_end(bytes, at),
        Some(&open @ (b'{' | b'[')) => {
            // In valid JSON each bracket kind balances on its own, so only this kind is counted.
            let close = if open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut i = at;
            while let Some(found) = bytes.get(i..).and_then(|rest| memchr::memchr3(b'"', open, close, rest)) {
                i += found;
                match bytes.get(i) {
                    Some(b'"') => {
                        i = string_end(bytes, i);
                        continue;
                    }
                    Some(&b) if b == open => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                }
                i += 1;
            }
            bytes.len()
        }
        _ => {
            let mut i = at;
            while bytes.get(i).is_some_and(|&b| !is_ws(b) && !matches!(b, b',' | b'}' | b']')) {
                i += 1;
            }
            i
        }
    }
}

/// The whole value in `bytes`, without surrounding whitespace.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// The members of the object `bytes` (surrounding whitespace allowed), in the order sent. Of
/// a key sent more than once only the last stays, as serde_json (and so the owned path) reads it.
pub(crate) fn members(bytes: &[u8]) -> Vec<Member<'_>> {
    let mut out = all_members(bytes);
    let repeated = |i: usize, out: &[Member<'_>]| out[i + 1..].iter().any(|m| m.name == out[i].name);
    if (0..out.len()).any(|i| repeated(i, &out)) {
        let keep: Vec<bool> = (0..out.len()).map(|i| !repeated(i, &out)).collect();
        let mut flags = keep.into_iter();
        out.retain(|_| flags.next().unwrap_or(true));
    }
    out
}

fn all_members(bytes: &[u8]) -> Vec<Member<'_>> {
    let mut out = Vec::with_capacity(16);
    let mut at = skip_ws(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return out;
    }
    at = skip_ws(bytes, at + 1);
    while bytes.get(at) == Some(&b'"') {
        let key_end = string_end(bytes, at);
        let colon = skip_ws(bytes, key_end);
        if bytes.get(colon) != Some(&b':') {
            break;
        }
        let start = skip_ws(bytes, colon + 1);
        let end = value_end(bytes, start);
        let (Some(key), Some(value)) = (bytes.get(at..key_end), bytes.get(start..end)) else { break };
        out.push(Member { key, value, name: key_name(key) });
        at = skip_ws(bytes, end);
        if bytes.get(at) != Some(&b',') {
            break;
        }
        at = skip_ws(bytes, at + 1);
    }
    out
}

/// The elements of the array `bytes` (surrounding whitespace allowed), in order.
pub(crate) fn elements(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = skip_ws(bytes, 0);
    if bytes.get(at) != Some(&b'[') {
        return out;
    }
    at = skip_ws(bytes, at + 1);
    while bytes.get(at).is_some_and(|&b| b != b']') {
        let end = value_end(bytes, at);
        let Some(element) = bytes.get(at..end) else { break };
        out.push(element);
        at = skip_ws(bytes, end);
        if bytes.get(at) != Some(&b',') {
            break;
        }
        at = skip_ws(bytes, at + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_members_with_nesting_escapes_and_whitespace() {
        let json = br#" { "a" : 1.50e3 , "b\"c":"x}\"]" ,"d":{"e":[1,{"f":"]"}]},"g":[ ],"h":null } "#;
        let found: Vec<(String, &[u8])> =
            members(json).iter().map(|m| (m.name.clone().into_owned(), m.value)).collect();
        assert_eq!(
            found,
            vec![
                ("a".to_owned(), &b"1.50e3"[..]),
                ("b\"c".to_owned(), &br#""x}\"]""#[..]),
                ("d".to_owned(), &br#"{"e":[1,{"f":"]"}]}"#[..]),
                ("g".to_owned(), &b"[ ]"[..]),
                ("h".to_owned(), &b"null"[..]),
            ]
        );
        assert!(members(b"{}").is_empty());
        let last: Vec<&[u8]> = members(br#"{"a":1,"b":2,"\u0061":3}"#).iter().map(|m| m.value).collect();
        assert_eq!(last, vec![&b"2"[..], &b"3"[..]]);
    }

    #[test]
    fn finds_elements() {
        assert_eq!(elements(br#"[ {"a":[1]} , "x" ,3]"#), vec![&br#"{"a":[1]}"#[..], &b"\"x\""[..], &b"3"[..]]);
        assert!(elements(b" [ ] ").is_empty());
        assert_eq!(key_name(br#""\u0074ype""#), "type");
    }
}
