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
    /// The members of the value, when it is the `context` or `integrations` object of an
    /// event or a batch: found in the same pass, as the splice merges them member by member.
    pub members: Vec<Member<'r>>,
}

/// The object members whose own members are scanned with their parent's (see
/// [`Member::members`]).
const MERGED: [&str; 2] = ["context", "integrations"];

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

/// Whether any byte of `word` is `byte` (the classic zero-byte test on `word ^ byte…byte`).
fn has_byte(word: u64, byte: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & (ONES << 7) != 0
}

/// The index just past the string starting at `at` (which holds its opening quote). Eight
/// bytes at a time until one may be a quote or a backslash, then byte by byte: most strings of
/// an event are short, where a memchr call costs more to set up than it saves.
fn string_end(bytes: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    loop {
        while let Some(chunk) = bytes.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
            let word = u64::from_le_bytes(chunk);
            if has_byte(word, b'"') || has_byte(word, b'\\') {
                break;
            }
            i += 8;
        }
        let stop = bytes.len().min(i + 8);
        while i < stop {
            match bytes.get(i) {
                Some(b'"') => return i + 1,
                Some(b'\\') => i += 2,
                _ => i += 1,
            }
        }
        if i >= bytes.len() {
            return bytes.len();
        }
    }
}

/// The index just past the value starting at `at`.
fn value_end(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at) {
        Some(b'"') => string_end(bytes, at),
        Some(b'{' | b'[') => {
            // In valid JSON brackets balance, so one depth counts both kinds.
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'"' => {
                        i = string_end(bytes, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
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

/// An array element as sent, with its members when it is an object (found in the same pass).
#[derive(Debug)]
pub(crate) struct Element<'r> {
    pub span: &'r [u8],
    pub members: Vec<Member<'r>>,
}

/// The members of the object `bytes` (surrounding whitespace allowed), in the order sent. Of
/// a key sent more than once only the last stays, as serde_json (and so the owned path) reads it.
pub(crate) fn members(bytes: &[u8]) -> Vec<Member<'_>> {
    last_only(object_at(bytes, skip_ws(bytes, 0), None, false).0)
}

/// The members of the event `bytes`, as [`members`], with those of its `context` and
/// `integrations` objects too.
pub(crate) fn event_members(bytes: &[u8]) -> Vec<Member<'_>> {
    last_only(object_at(bytes, skip_ws(bytes, 0), None, true).0)
}

/// The elements of the array `bytes` (surrounding whitespace allowed), in order.
pub(crate) fn elements(bytes: &[u8]) -> Vec<Element<'_>> {
    array_at(bytes, skip_ws(bytes, 0)).0
}

/// A batch body in one pass: its members, and the elements of its `batch` array.
pub(crate) fn batch(bytes: &[u8]) -> (Vec<Member<'_>>, Vec<Element<'_>>) {
    let mut elements = Vec::new();
    let (members, _) = object_at(bytes, skip_ws(bytes, 0), Some(("batch", &mut elements)), true);
    (last_only(members), elements)
}

fn last_only(mut out: Vec<Member<'_>>) -> Vec<Member<'_>> {
    let repeated = |i: usize, out: &[Member<'_>]| out[i + 1..].iter().any(|m| m.name == out[i].name);
    if (0..out.len()).any(|i| repeated(i, &out)) {
        let keep: Vec<bool> = (0..out.len()).map(|i| !repeated(i, &out)).collect();
        let mut flags = keep.into_iter();
        out.retain(|_| flags.next().unwrap_or(true));
    }
    out
}

/// The members of the object at `at` and the index just past it. The array member named in
/// `nested` has its elements scanned too (into the vector given), in the same pass, and with
/// `merged`, so do the members of its `context` and `integrations` objects.
fn object_at<'r>(
    bytes: &'r [u8],
    mut at: usize,
    mut nested: Option<(&str, &mut Vec<Element<'r>>)>,
    merged: bool,
) -> (Vec<Member<'r>>, usize) {
    let mut out = Vec::with_capacity(16);
    if bytes.get(at) != Some(&b'{') {
        return (out, at);
    }
    at = skip_ws(bytes, at + 1);
    while bytes.get(at) == Some(&b'"') {
        let key_end = string_end(bytes, at);
        let colon = skip_ws(bytes, key_end);
        if bytes.get(colon) != Some(&b':') {
            break;
        }
        let start = skip_ws(bytes, colon + 1);
        let Some(key) = bytes.get(at..key_end) else { break };
        let name = key_name(key);
        let mut inner = Vec::new();
        let end = match &mut nested {
            Some((wanted, elements)) if bytes.get(start) == Some(&b'[') && name == *wanted => {
                let (found, end) = array_at(bytes, start);
                **elements = found;
                end
            }
            _ if merged && bytes.get(start) == Some(&b'{') && MERGED.contains(&name.as_ref()) => {
                let (found, end) = object_at(bytes, start, None, false);
                inner = last_only(found);
                end
            }
            _ => value_end(bytes, start),
        };
        let Some(value) = bytes.get(start..end) else { break };
        out.push(Member { key, value, name, members: inner });
        at = skip_ws(bytes, end);
        if bytes.get(at) != Some(&b',') {
            break;
        }
        at = skip_ws(bytes, at + 1);
    }
    (out, at + 1)
}

/// The elements of the array at `at` (objects with their members) and the index just past it.
fn array_at(bytes: &[u8], mut at: usize) -> (Vec<Element<'_>>, usize) {
    let mut out = Vec::new();
    if bytes.get(at) != Some(&b'[') {
        return (out, at);
    }
    at = skip_ws(bytes, at + 1);
    while bytes.get(at).is_some_and(|&b| b != b']') {
        let (members, end) = match bytes.get(at) {
            Some(b'{') => {
                let (members, end) = object_at(bytes, at, None, true);
                (last_only(members), end)
            }
            _ => (Vec::new(), value_end(bytes, at)),
        };
        let Some(span) = bytes.get(at..end) else { break };
        out.push(Element { span, members });
        at = skip_ws(bytes, end);
        if bytes.get(at) != Some(&b',') {
            break;
        }
        at = skip_ws(bytes, at + 1);
    }
    (out, at + 1)
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
    fn strings_end_at_their_closing_quote_past_escapes_at_any_offset() {
        for pad in 0..20 {
            let text = format!("\"{}\\\"{}\\\\\"tail", "a".repeat(pad), "b".repeat(pad % 9));
            let end = text.len() - "tail".len();
            assert_eq!(string_end(text.as_bytes(), 0), end, "{text}");
            assert_eq!(string_end(&text.as_bytes()[..end - 1], 0), end - 1, "unterminated: the whole input");
        }
    }

    #[test]
    fn finds_elements() {
        let found = elements(br#"[ {"a":[1]} , "x" ,3]"#);
        let spans: Vec<&[u8]> = found.iter().map(|e| e.span).collect();
        assert_eq!(spans, vec![&br#"{"a":[1]}"#[..], &b"\"x\""[..], &b"3"[..]]);
        assert_eq!(found[0].members[0].value, b"[1]");
        assert!(elements(b" [ ] ").is_empty());
        let (members, events) = batch(br#"{"sentAt":null, "batch" : [{"x":{"y":"]"}}, {}], "z":1}"#);
        assert_eq!(members.iter().map(|m| m.name.as_ref()).collect::<Vec<_>>(), vec!["sentAt", "batch", "z"]);
        assert_eq!(events.iter().map(|e| e.span).collect::<Vec<_>>(), vec![&br#"{"x":{"y":"]"}}"#[..], b"{}"]);
        assert_eq!(key_name(br#""\u0074ype""#), "type");
    }
}
