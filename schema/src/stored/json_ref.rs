//! A borrowed view of JSON the scan has already validated: each value read in place from its
//! text, and an object's members (or an array's items) found only when that value is read.

use std::borrow::Cow;

use crate::splice::check::Kind;
use crate::splice::raw::Member;
use crate::splice::scan::{self, Root, Scanner};

/// One valid JSON value, borrowed: its text within the document it was found in.
#[derive(Debug, Clone, Copy)]
pub struct JsonRef<'s> {
    /// The whole document (valid UTF-8 and valid JSON), so that nested values are found at
    /// their offsets in it, without checking the text again.
    document: &'s str,
    at: usize,
    end: usize,
}

/// An object's members as stored, repeated keys included; read by name, the last copy of a
/// key counts, as serde_json (and so the owned [`crate::Event`]) reads it.
#[derive(Debug, Clone)]
pub struct JsonObject<'s> {
    document: &'s str,
    members: Vec<Member<'s>>,
}

/// The items of a JSON array, found one at a time.
#[derive(Debug, Clone)]
pub struct JsonItems<'s> {
    document: &'s str,
    /// Where the next item (or the closing bracket) starts, after whitespace; `None` once done.
    next: Option<usize>,
}

impl<'s> JsonRef<'s> {
    /// Validates `text` as one JSON value (whitespace around it allowed), as the gateway's scan
    /// does; `None` when it is not JSON.
    pub fn parse(text: &'s str) -> Option<Self> {
        let document = scan::document(text.as_bytes(), Root::Event).ok()?;
        let at = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
        Some(Self { document: text, at, end: at + document.span.len() })
    }

    pub(crate) fn of_member(document: &'s str, member: &Member<'s>) -> Self {
        Self { document, at: member.at, end: member.at + member.value.len() }
    }

    /// The value's JSON text, as stored.
    pub fn json(&self) -> &'s str {
        self.document.get(self.at..self.end).unwrap_or_default()
    }

    /// Where the value's text starts and ends in its document (for a string, quotes included).
    pub(crate) fn range(&self) -> std::ops::Range<usize> {
        self.at..self.end
    }

    fn kind(&self) -> Kind {
        Kind::of(self.json().as_bytes())
    }

    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// A string's text, unescaped: borrowed unless it has an escape.
    pub fn as_str(&self) -> Option<Cow<'s, str>> {
        let json = self.json();
        let inner = json.strip_prefix('"')?.strip_suffix('"')?;
        if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
            return Some(Cow::Borrowed(inner));
        }
        // Valid JSON, so the only failure left would be a bug; read as no string then.
        serde_json::from_str::<String>(json).ok().map(Cow::Owned)
    }

    /// Whether the value is a string with at least one escape (its text is not as stored).
    pub(crate) fn is_escaped_str(&self) -> bool {
        self.kind() == Kind::String && memchr::memchr(b'\\', self.json().as_bytes()).is_some()
    }

    /// Any number as `f64`, as the owned path reads one: an integer (no fraction, no exponent)
    /// as an `i64` or `u64` converted, any other number parsed as an `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        let json = self.json();
        match self.kind() {
            Kind::Integer => match json.parse::<i64>() {
                Ok(n) => Some(n as f64),
                Err(_) => json.parse::<u64>().ok().map(|n| n as f64),
            },
            Kind::Float => json.parse::<f64>().ok(),
            _ => None,
        }
    }

    /// The value as an id's text, the way the enricher keys products: a non-empty string
    /// (unescaped), an integer as its decimal text (`-0` is `0`, as it reads as an integer
    /// zero), any other number as serde_json writes that `f64` (`1e2` is `100.0`).
    pub fn id_text(&self) -> Option<Cow<'s, str>> {
        let json = self.json();
        match self.kind() {
            Kind::String => self.as_str().filter(|text| !text.is_empty()),
            Kind::Integer if json == "-0" => Some(Cow::Borrowed("0")),
            Kind::Integer => Some(Cow::Borrowed(json)),
            Kind::Float => {
                let number = json.parse::<f64>().ok().and_then(serde_json::Number::from_f64)?;
                Some(Cow::Owned(number.to_string()))
            }
            _ => None,
        }
    }

    /// An object's members, found now (the value's text is walked once per call).
    pub fn as_object(&self) -> Option<JsonObject<'s>> {
        if self.kind() != Kind::Object {
            return None;
        }
        let members = Scanner::new(self.document).members(self.at).ok()?;
        Some(JsonObject { document: self.document, members })
    }

    /// An array's items, found as they are iterated.
    pub fn items(&self) -> Option<JsonItems<'s>> {
        (self.kind() == Kind::Array).then_some(JsonItems { document: self.document, next: Some(self.at + 1) })
    }
}

impl<'s> JsonObject<'s> {
    pub(crate) fn new(document: &'s str, members: Vec<Member<'s>>) -> Self {
        Self { document, members }
    }

    /// The member `name`; of a repeated key, the last copy.
    pub fn get(&self, name: &str) -> Option<JsonRef<'s>> {
        let member = self.members.iter().rev().find(|member| member.name == name)?;
        Some(JsonRef::of_member(self.document, member))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.members.iter().any(|member| member.name == name)
    }

    /// Whether the object has no members at all.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl<'s> Iterator for JsonItems<'s> {
    type Item = JsonRef<'s>;

    fn next(&mut self) -> Option<JsonRef<'s>> {
        let scanner = Scanner::new(self.document);
        let at = scanner.ws(self.next?);
        self.next = None;
        if scanner.byte(at) == Some(b']') {
            return None;
        }
        // Nesting was checked when the document was scanned; a depth of 0 is safe here.
        let end = scanner.value(at, 0).ok()?;
        let after = scanner.ws(end);
        if scanner.byte(after) == Some(b',') {
            self.next = Some(after + 1);
        }
        Some(JsonRef { document: self.document, at, end })
    }
}
