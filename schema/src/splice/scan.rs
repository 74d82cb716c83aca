//! The one pass over a request body: validates it as JSON (the grammar simd-json accepts:
//! strict RFC 8259, UTF-8, at most 1024 levels deep, integers within i64/u64, finite numbers)
//! and, in the same pass, finds the byte spans the splice copies: the members of each event,
//! of its `context` and `integrations`, and of a batch. Nothing is decoded or allocated for
//! values nobody reads; the few fields validation reads are decoded from their spans later.

use std::borrow::Cow;
use std::cell::Cell;

use super::raw::{key_name, last_only, Element, Member, MERGED};

/// simd-json's default nesting limit (`simd_json::DEFAULT_MAX_DEPTH`), kept so that the same
/// bodies are refused as before.
pub(crate) const MAX_DEPTH: usize = 1024;

/// Why the bytes are not JSON, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub(crate) struct ScanError {
    /// A reference to the message rather than the message: a thin pointer keeps a
    /// `Scan<usize>` at two words, returned in registers rather than through memory by every
    /// step of the scan.
    what: &'static &'static str,
    at: usize,
}

type Scan<T> = Result<T, ScanError>;

const _: () = assert!(std::mem::size_of::<Scan<usize>>() == 16);

fn fail<T>(what: &'static &'static str, at: usize) -> Scan<T> {
    Err(ScanError { what, at })
}

/// The scan's one refusal that is not about the JSON: an array of events longer than the
/// caller allows. Refused as soon as it is seen, before the rest is scanned and recorded.
static TOO_MANY_EVENTS: &str = "more events than allowed";

impl ScanError {
    pub(crate) fn is_too_many_events(&self) -> bool {
        *self.what == TOO_MANY_EVENTS
    }
}

/// What the root value is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// One event: an object's members (and those of its `context` and `integrations`).
    Event,
    /// `/v1/events`: an array of events, or one event.
    Events,
    /// A Segment batch: an object whose `batch` array holds the events.
    Batch,
}

/// What to record of an object's members.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Only the members' spans.
    Flat,
    /// Spans, and the members of `context` and `integrations`.
    Event,
    /// As `Event`, and the elements of the `batch` array.
    Batch,
}

/// A scanned document: the root's span and members (when an object), and the events of its
/// array (the root's, or the batch's).
#[derive(Debug, Default)]
pub(crate) struct Document<'r> {
    pub span: &'r [u8],
    pub members: Vec<Member<'r>>,
    pub elements: Option<Vec<Element<'r>>>,
    /// The scanned bytes as text: member offsets ([`Member::at`]) index it.
    pub text: &'r str,
    /// Whether an object whose members were kept last-copy-only had a key more than once.
    pub repeated: bool,
}

/// Validates `bytes` as one JSON value (whitespace around it allowed) and scans it as `root`.
pub(crate) fn document(bytes: &[u8], root: Root) -> Scan<Document<'_>> {
    document_capped(bytes, root, usize::MAX)
}

/// As [`document`], refusing an array of events (the root's, or the batch's) of more than
/// `max_events` elements.
pub(crate) fn document_capped(bytes: &[u8], root: Root, max_events: usize) -> Scan<Document<'_>> {
    let Ok(text) = simdutf8::basic::from_utf8(bytes) else {
        // The fast check says only whether; std's says where, for the error.
        let valid = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
        return fail(&"invalid UTF-8", valid);
    };
    let scanner = Scanner { max_events, ..Scanner::new(text) };
    let start = scanner.ws(0);
    let mut document = Document { text, ..Document::default() };
    let mut batch = None;
    let end = match (root, bytes.get(start)) {
        (Root::Events, Some(b'[')) => {
            let (elements, end) = scanner.events(start, 0)?;
            document.elements = Some(elements);
            end
        }
        (_, Some(b'{')) => {
            let level = match root {
                Root::Batch => Level::Batch,
                Root::Event | Root::Events => Level::Event,
            };
            let (members, end) = scanner.object(start, 0, level, &mut batch)?;
            document.members = scanner.last_only(members);
            end
        }
        (_, None) => return fail(&"no JSON value", start),
        _ => scanner.value(start, 0)?,
    };
    if scanner.ws(end) != bytes.len() {
        return fail(&"trailing characters after the JSON value", scanner.ws(end));
    }
    document.span = &bytes[start..end];
    document.repeated = scanner.repeated.get();
    // Of a repeated `batch` key the last counts: its elements are the ones kept only if it
    // is the array scanned last.
    if let Some((span, elements)) = batch {
        let last = document.members.iter().find(|m| m.name == "batch");
        if last.is_some_and(|m| std::ptr::eq(m.value, span)) {
            document.elements = Some(elements);
        }
    }
    Ok(document)
}

/// The elements of a batch's `batch` array, and its span.
type BatchArray<'r> = Option<(&'r [u8], Vec<Element<'r>>)>;

/// The walk over one document. Also used on a document already scanned, to find the members
/// and items of nested values only when they are read (`crate::stored`).
pub(crate) struct Scanner<'r> {
    bytes: &'r [u8],
    /// The same bytes, known to be UTF-8: keys are sliced from it without checking again.
    text: &'r str,
    repeated: Cell<bool>,
    /// The most elements an array of events may have.
    max_events: usize,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'r> Scanner<'r> {
    pub(crate) fn new(text: &'r str) -> Self {
        Self { bytes: text.as_bytes(), text, repeated: Cell::new(false), max_events: usize::MAX }
    }

    pub(crate) fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    /// [`last_only`], noting whether it dropped anything.
    fn last_only(&self, members: Vec<Member<'r>>) -> Vec<Member<'r>> {
        let count = members.len();
        let kept = last_only(members);
        if kept.len() < count {
            self.repeated.set(true);
        }
        kept
    }

    pub(crate) fn ws(&self, mut at: usize) -> usize {
        while self.byte(at).is_some_and(is_ws) {
            at += 1;
        }
        at
    }

    /// From an object's key at `at`: the end of the key, the start of its value, and whether
    /// the key has an escape.
    #[inline(always)]
    pub(crate) fn key(&self, at: usize) -> Scan<(usize, usize, bool)> {
        if self.byte(at) != Some(b'"') {
            return fail(&"expected an object key", at);
        }
        let (end, escaped) = self.string_escaped(at)?;
        let colon = self.ws(end);
        if self.byte(colon) != Some(b':') {
            return fail(&"expected `:` after an object key", colon);
        }
        Ok((end, self.ws(colon + 1), escaped))
    }

    /// The index just past the value at `at`, inside `depth` open objects and arrays. Nested
    /// values are walked without recursion, their kinds kept in a bit stack.
    pub(crate) fn value(&self, mut at: usize, depth: usize) -> Scan<usize> {
        if !matches!(self.byte(at), Some(b'{' | b'[')) {
            return self.scalar(at);
        }
        let mut objects = [0u64; MAX_DEPTH / 64];
        let mut level = 0usize;
        loop {
            match self.byte(at) {
                Some(open @ (b'{' | b'[')) => {
                    if depth + level >= MAX_DEPTH {
                        return fail(&"nesting deeper than 1024 levels", at);
                    }
                    let (word, bit) = (level / 64, 1u64 << (level % 64));
                    objects[word] = if open == b'{' { objects[word] | bit } else { objects[word] & !bit };
                    level += 1;
                    at = self.ws(at + 1);
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.byte(at) != Some(close) {
                        if open == b'{' {
                            at = self.key(at)?.1;
                        }
                        continue;
                    }
                    (level, at) = (level - 1, at + 1);
                }
                _ => at = self.scalar(at)?,
            }
            // After a value: close containers until one continues.
            loop {
                if level == 0 {
                    return Ok(at);
                }
                at = self.ws(at);
                let in_object = objects[(level - 1) / 64] & (1u64 << ((level - 1) % 64)) != 0;
                match (self.byte(at), in_object) {
                    (Some(b','), true) => {
                        at = self.key(self.ws(at + 1))?.1;
                        break;
                    }
                    (Some(b','), false) => {
                        at = self.ws(at + 1);
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        level -= 1;
                        at += 1;
                    }
                    (_, true) => return fail(&"expected `,` or `}` in an object", at),
                    (_, false) => return fail(&"expected `,` or `]` in an array", at),
                }
            }
        }
    }

    /// The members of the object at `at` (inside `depth` levels) and the index just past it.
    fn object(
        &self,
        at: usize,
        depth: usize,
        level: Level,
        batch: &mut BatchArray<'r>,
    ) -> Scan<(Vec<Member<'r>>, usize)> {
        if depth >= MAX_DEPTH {
            return fail(&"nesting deeper than 1024 levels", at);
        }
        let (bytes, depth) = (self.bytes, depth + 1);
        let mut at = self.ws(at + 1);
        if self.byte(at) == Some(b'}') {
            // Nothing to allocate: a batch of `{}` items held 704 bytes for each.
            return Ok((Vec::new(), at + 1));
        }
        // Room for 11 members at the top (968 bytes) and 8 below (704 bytes) stays within
        // mimalloc's small-size fast path (1 KiB), where 16 took its slow path for every object.
        let mut out = Vec::with_capacity(if depth == 1 { 11 } else { 8 });
        loop {
            let (key_end, start, escaped) = self.key(at)?;
            let key = &bytes[at..key_end];
            // Quotes are ASCII, so the text between them is whole characters.
            let name = match self.text.get(at + 1..key_end - 1) {
                Some(name) if !escaped => Cow::Borrowed(name),
                _ => key_name(key),
            };
            let mut inner = Vec::new();
            let end = match (level, self.byte(start)) {
                (Level::Batch, Some(b'[')) if name == "batch" => {
                    let (elements, end) = self.events(start, depth)?;
                    *batch = Some((&bytes[start..end], elements));
                    end
                }
                (Level::Batch | Level::Event, Some(b'{')) if MERGED.contains(&name.as_ref()) => {
                    let (found, end) = self.object(start, depth, Level::Flat, &mut None)?;
                    inner = self.last_only(found);
                    end
                }
                _ => self.value(start, depth)?,
            };
            out.push(Member { key, value: &bytes[start..end], at: start, name, members: inner });
            at = self.ws(end);
            match self.byte(at) {
                Some(b',') => at = self.ws(at + 1),
                Some(b'}') => return Ok((out, at + 1)),
                _ => return fail(&"expected `,` or `}` in an object", at),
            }
        }
    }

    /// The elements of the array of events at `at` and the index just past it.
    fn events(&self, at: usize, depth: usize) -> Scan<(Vec<Element<'r>>, usize)> {
        let mut count = 0_usize;
        self.array(at, depth, |at, depth| {
            count += 1;
            if count > self.max_events {
                return fail(&TOO_MANY_EVENTS, at);
            }
            let (members, end) = if self.byte(at) == Some(b'{') {
                let (members, end) = self.object(at, depth, Level::Event, &mut None)?;
                (self.last_only(members), end)
            } else {
                (Vec::new(), self.value(at, depth)?)
            };
            Ok((Element { span: &self.bytes[at..end], members }, end))
        })
    }

    /// The array at `at` (inside `depth` levels), each element read by `element`, given where
    /// it starts and its depth, which answers with what it made and where the element ends.
    fn array<T>(
        &self,
        at: usize,
        depth: usize,
        mut element: impl FnMut(usize, usize) -> Scan<(T, usize)>,
    ) -> Scan<(Vec<T>, usize)> {
        if depth >= MAX_DEPTH {
            return fail(&"nesting deeper than 1024 levels", at);
        }
        let depth = depth + 1;
        let mut out = Vec::new();
        let mut at = self.ws(at + 1);
        if self.byte(at) == Some(b']') {
            return Ok((out, at + 1));
        }
        loop {
            let (made, end) = element(at, depth)?;
            out.push(made);
            at = self.ws(end);
            match self.byte(at) {
                Some(b',') => at = self.ws(at + 1),
                Some(b']') => return Ok((out, at + 1)),
                _ => return fail(&"expected `,` or `]` in an array", at),
            }
        }
    }
}

#[path = "scan_lex.rs"]
mod lex;

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
