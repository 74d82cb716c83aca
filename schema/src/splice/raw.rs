//! What the scan finds, as slices of the client's bytes: the members of an object and the
//! elements of an array, so the splice can copy them verbatim; and the key and string text
//! decoded from such a slice.

use std::borrow::Cow;
use std::collections::HashSet;

/// One `"key": value` of an object, both as sent (the key with its quotes), and the key's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member<'r> {
    pub key: &'r [u8],
    pub value: &'r [u8],
    /// Where `value` starts in the scanned bytes.
    pub at: usize,
    /// The key unescaped (escapes are rare, so usually borrowed).
    pub name: Cow<'r, str>,
    /// The members of the value, when it is the `context` or `integrations` object of an
    /// event or a batch: found in the same pass, as the splice merges them member by member.
    pub members: Vec<Member<'r>>,
}

/// The object members whose own members are scanned with their parent's (see
/// [`Member::members`]).
pub(crate) const MERGED: [&str; 2] = ["context", "integrations"];

/// The unescaped text of a raw JSON string (with its quotes), as [`string_text`] reads it once
/// the bytes are known to be UTF-8 (empty when they are not).
pub(crate) fn key_name(raw: &[u8]) -> Cow<'_, str> {
    std::str::from_utf8(raw).map_or(Cow::Borrowed(""), string_text)
}

/// The unescaped text of a JSON string (with its quotes) from a document already checked as
/// UTF-8: borrowed unless it has an escape, and then not checked again.
pub(crate) fn string_text(json: &str) -> Cow<'_, str> {
    let inner = json.get(1..json.len().saturating_sub(1)).unwrap_or_default();
    // A fold without an early exit compiles to a vector loop; ids and keys are a few dozen
    // bytes, where `contains`'s memchr set-up costs more than the scan.
    if !inner.bytes().fold(false, |found, b| found | (b == b'\\')) {
        return Cow::Borrowed(inner);
    }
    // Valid JSON, so a failure would be a bug; it reads as empty then.
    Cow::Owned(serde_json::from_str::<String>(json).unwrap_or_default())
}

/// An array element as sent, with its members when it is an object (found in the same pass).
#[derive(Debug)]
pub(crate) struct Element<'r> {
    pub span: &'r [u8],
    pub members: Vec<Member<'r>>,
}

/// Up to this many names, comparing every pair costs less than hashing them.
pub(crate) const PAIRWISE_MAX: usize = 32;

/// Of a key sent more than once only the last stays, as serde_json (and so the owned path)
/// reads it; the others keep their order. Past [`PAIRWISE_MAX`] members the names go through a
/// hash set, so that an object of tens of thousands of keys (a hostile body of 500 KiB) costs
/// linear time rather than seconds of a core.
pub(crate) fn last_only(mut out: Vec<Member<'_>>) -> Vec<Member<'_>> {
    let keep: Vec<bool> = if out.len() <= PAIRWISE_MAX {
        let repeated = |i: usize, out: &[Member<'_>]| out[i + 1..].iter().any(|m| m.name == out[i].name);
        if !(0..out.len()).any(|i| repeated(i, &out)) {
            return out;
        }
        (0..out.len()).map(|i| !repeated(i, &out)).collect()
    } else {
        // From the back: the first copy seen is the last one sent.
        let mut seen = HashSet::with_capacity(out.len());
        let mut keep: Vec<bool> = out.iter().rev().map(|m| seen.insert(m.name.as_ref())).collect();
        if keep.iter().all(|kept| *kept) {
            return out;
        }
        keep.reverse();
        keep
    };
    let mut flags = keep.into_iter();
    out.retain(|_| flags.next().unwrap_or(true));
    out
}
