//! The stored-event scan: the gateway's validating scan, recording the members of every object
//! and the items of every array as one flat table of offsets. An entry holds nothing to drop
//! and each object's entries sit together, so a read is a short backwards search and the
//! whole record is one allocation, freed at once.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

use crate::splice::raw::{key_name, MERGED, PAIRWISE_MAX};
use crate::splice::scan::{Scanner, MAX_DEPTH};

/// How deep the scan records members and items. Recording recurses (a frame per level), so it
/// stops here; deeper values are walked without recursion and read by walking them again
/// ([`super::JsonRef`]), which no real event needs.
pub(crate) const RECORDED_DEPTH: usize = 64;

/// Set in [`Entry::key_len`] when the key has an escape, so its name is not its text.
const ESCAPED: u32 = 1 << 31;

/// One member of an object, or one item of an array (which has no key), as offsets into the
/// scanned document.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Entry {
    /// Where the key's opening quote is.
    key_at: u32,
    /// The key's length, quotes included, with [`ESCAPED`] set for a key with an escape; 0
    /// for an array item.
    key_len: u32,
    /// Where the value's text starts and ends.
    at: u32,
    end: u32,
    /// The value's own members or items: `count` entries of the table from `first`. None for a
    /// scalar, an empty container, or one below [`RECORDED_DEPTH`].
    first: u32,
    count: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 24);

impl Entry {
    pub(crate) fn at(&self) -> usize {
        self.at as usize
    }

    pub(crate) fn end(&self) -> usize {
        self.end as usize
    }

    /// The value's recorded members or items, when it is a container the scan recorded: a
    /// non-empty one has entries, an empty one has none and needs none.
    pub(crate) fn recorded<'t>(&self, document: &str, table: &'t [Entry]) -> Option<&'t [Entry]> {
        let value = document.as_bytes().get(self.at()..self.end())?;
        if !matches!(value.first(), Some(b'{' | b'[')) {
            return None;
        }
        let empty = || value.get(1..value.len() - 1).is_some_and(|inner| inner.trim_ascii().is_empty());
        let children = table.get(self.first as usize..(self.first + self.count) as usize)?;
        (self.count > 0 || empty()).then_some(children)
    }

    /// Whether the member's key reads `name`. Compared as sent unless the key has an escape.
    #[inline(always)]
    pub(crate) fn is_named(&self, document: &str, name: &str) -> bool {
        if self.key_len & ESCAPED != 0 {
            return self.escaped_name(document) == name;
        }
        let start = self.key_at as usize + 1;
        self.key_len as usize == name.len() + 2
            && document.as_bytes().get(start..start + name.len()) == Some(name.as_bytes())
    }

    /// The key unescaped (borrowed unless it has an escape); empty for an array item.
    #[inline(always)]
    pub(crate) fn name<'d>(&self, document: &'d str) -> Cow<'d, str> {
        if self.key_len & ESCAPED != 0 {
            return self.escaped_name(document);
        }
        let start = self.key_at as usize + 1;
        Cow::Borrowed(document.get(start..start + (self.key_len as usize).saturating_sub(2)).unwrap_or_default())
    }

    #[cold]
    #[inline(never)]
    fn escaped_name<'d>(&self, document: &'d str) -> Cow<'d, str> {
        let start = self.key_at as usize;
        key_name(document.as_bytes().get(start..start + (self.key_len & !ESCAPED) as usize).unwrap_or_default())
    }
}

/// The last of `members` whose key reads `name`: a repeated key reads as its last copy, as
/// serde_json reads it.
pub(crate) fn last_named<'t>(members: &'t [Entry], document: &str, name: &str) -> Option<&'t Entry> {
    members.iter().rev().find(|member| member.is_named(document, name))
}

/// A stored event's record: the top level's members, and below them the table.
#[derive(Debug)]
pub(crate) struct Table {
    pub entries: Vec<Entry>,
    /// The top-level object's members: `entries[top.0..top.1]`.
    top: (usize, usize),
    /// Whether the top level, or a top-level `context` or `integrations`, has a key more than
    /// once.
    pub repeated: bool,
}

impl Table {
    pub(crate) fn top(&self) -> &[Entry] {
        &self.entries[self.top.0..self.top.1]
    }
}

thread_local! {
    /// The members of the objects still open, reused from event to event.
    static OPEN: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Validates `text` as one JSON object (whitespace around it allowed), as the gateway's scan
/// does, and records it. `None` for anything else: the caller asks the owned path why.
pub(crate) fn record(text: &str) -> Option<Table> {
    u32::try_from(text.len()).ok()?;
    let scanner = Scanner::new(text);
    let start = scanner.ws(0);
    if scanner.byte(start) != Some(b'{') {
        return None;
    }
    // Room for a typical analytics.js event's members at every level, in one allocation.
    let entries = Vec::with_capacity(64);
    let open = OPEN.with(|open| std::mem::take(&mut *open.borrow_mut()));
    let mut recorder = Recorder { scanner, entries, open };
    let root = recorder.container::<true>(start, 0);
    let Recorder { scanner, entries, mut open } = recorder;
    open.clear();
    OPEN.with(|slot| *slot.borrow_mut() = open);
    let (first, count, end) = root?;
    if scanner.ws(end) != text.len() {
        return None;
    }
    let top = (first as usize, (first + count) as usize);
    let mut table = Table { entries, top, repeated: false };
    table.repeated = repeats(text, table.top())
        || table.top().iter().any(|member| {
            MERGED.iter().any(|name| member.is_named(text, name))
                && member.recorded(text, &table.entries).is_some_and(|inner| repeats(text, inner))
        });
    Some(table)
}

/// Whether two members have the same name. A filter of the keys as sent decides for nearly
/// every object without comparing them; past it, a few are compared pairwise and many through
/// a hash set, so that an object of thousands of keys costs linear time.
fn repeats(text: &str, members: &[Entry]) -> bool {
    let bytes = text.as_bytes();
    let mut seen = [0u64; 16];
    let mut maybe = false;
    for member in members {
        if member.key_len & ESCAPED != 0 {
            maybe = true;
            break;
        }
        let (at, len) = (member.key_at as usize, member.key_len as usize);
        // Length, first, middle and last characters: the keys of one object seldom share all four.
        let hash = (len as u32).wrapping_mul(0x9E37_79B1)
            ^ u32::from(bytes[at + 1]).wrapping_mul(0x85EB_CA77)
            ^ u32::from(bytes[at + len / 2]).wrapping_mul(0xC2B2_AE3D)
            ^ u32::from(bytes[at + len - 2]).wrapping_mul(0x27D4_EB2F);
        let slot = (hash >> 22) as usize;
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        maybe |= seen[word] & bit != 0;
        seen[word] |= bit;
    }
    if !maybe {
        return false;
    }
    if members.len() > PAIRWISE_MAX {
        let mut seen = HashSet::with_capacity(members.len());
        return !members.iter().all(|member| seen.insert(member.name(text)));
    }
    members.iter().enumerate().any(|(i, member)| {
        let name = member.name(text);
        members[i + 1..].iter().any(|other| other.is_named(text, &name))
    })
}

/// The recording walk: entries of objects and arrays still open wait in `open`, and move to
/// `entries` together when their container closes, so each container's sit side by side.
struct Recorder<'r> {
    scanner: Scanner<'r>,
    entries: Vec<Entry>,
    open: Vec<Entry>,
}

/// Where a value's members or items went (`first`, `count`) and the index just past it.
type Recorded = (u32, u32, usize);

impl Recorder<'_> {
    /// The value at `at`, inside `depth` open objects and arrays.
    #[inline(always)]
    fn value(&mut self, at: usize, depth: usize) -> Option<Recorded> {
        match self.scanner.byte(at) {
            Some(b'{') if depth < RECORDED_DEPTH => self.container::<true>(at, depth),
            Some(b'[') if depth < RECORDED_DEPTH => self.container::<false>(at, depth),
            _ => Some((0, 0, self.scanner.value(at, depth).ok()?)),
        }
    }

    /// An object (`KEYED`) or an array starting at `at`: each member's entry, then the
    /// container's. One function for both, so the two cannot drift; the constant folds away.
    fn container<const KEYED: bool>(&mut self, at: usize, depth: usize) -> Option<Recorded> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let closing = if KEYED { b'}' } else { b']' };
        let mark = self.open.len();
        let mut at = self.scanner.ws(at + 1);
        if self.scanner.byte(at) != Some(closing) {
            loop {
                // An array member's entry has no key: its key position is its own.
                let (key_len, start) = if KEYED {
                    let (key_end, start, escaped) = self.scanner.key(at).ok()?;
                    ((key_end - at) as u32 | if escaped { ESCAPED } else { 0 }, start)
                } else {
                    (0, at)
                };
                let (first, count, end) = self.value(start, depth + 1)?;
                self.open.push(Entry { key_at: at as u32, key_len, at: start as u32, end: end as u32, first, count });
                at = self.scanner.ws(end);
                match self.scanner.byte(at) {
                    Some(b',') => at = self.scanner.ws(at + 1),
                    Some(byte) if byte == closing => break,
                    _ => return None,
                }
            }
        }
        Some(self.close(mark, at + 1))
    }

    /// Moves the entries of the container that just closed (`open[mark..]`) to the table.
    fn close(&mut self, mark: usize, end: usize) -> Recorded {
        let first = self.entries.len() as u32;
        self.entries.extend_from_slice(&self.open[mark..]);
        let count = (self.open.len() - mark) as u32;
        self.open.truncate(mark);
        (first, count, end)
    }
}
