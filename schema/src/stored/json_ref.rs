//! A borrowed view of JSON the scan has already validated: each value read in place from its
//! text; an object's members and an array's items as the stored-event scan recorded them, or
//! walked when read (a value from [`JsonRef::parse`]).

use std::borrow::Cow;

use super::table::{last_named, Entry};
use crate::splice::check::Kind;
use crate::splice::raw::{key_name, string_text};
use crate::splice::scan::{self, Root, Scanner};

/// One valid JSON value, borrowed: its text within the document it was found in. Read by
/// name, an object's repeated key gives its last copy, as serde_json (and so the owned
/// [`crate::Event`]) reads it.
#[derive(Debug, Clone, Copy)]
pub struct JsonRef<'a> {
    /// The whole document (valid UTF-8 and valid JSON), so that nested values are found at
    /// their offsets in it, without checking the text again.
    document: &'a str,
    /// The stored-event scan's table, which `members` and their own members index; empty for
    /// a value from [`JsonRef::parse`].
    table: &'a [Entry],
    at: usize,
    end: usize,
    /// An object's members (every copy of a repeated key) or an array's items, when the scan
    /// recorded them.
    members: Option<&'a [Entry]>,
}

/// The items of a JSON array, as recorded or found one at a time.
#[derive(Debug, Clone)]
pub struct JsonItems<'a> {
    document: &'a str,
    table: &'a [Entry],
    recorded: Option<std::slice::Iter<'a, Entry>>,
    /// Where the next item (or the closing bracket) starts, after whitespace; `None` once done.
    next: Option<usize>,
}

impl<'a> JsonRef<'a> {
    /// Validates `text` as one JSON value (whitespace around it allowed), as the gateway's scan
    /// does; `None` when it is not JSON.
    pub fn parse(text: &'a str) -> Option<Self> {
        let document = scan::document(text.as_bytes(), Root::Event).ok()?;
        let at = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
        Some(Self { document: text, table: &[], at, end: at + document.span.len(), members: None })
    }

    /// A member (or item) of `table`, the stored-event scan of `document`, which recorded the
    /// members or items of every object or array down to [`super::table::RECORDED_DEPTH`].
    pub(crate) fn of_entry(document: &'a str, table: &'a [Entry], entry: &Entry) -> Self {
        let members = entry.recorded(document, table);
        Self { document, table, at: entry.at(), end: entry.end(), members }
    }

    /// The value's JSON text, as stored.
    pub fn json(&self) -> &'a str {
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

    pub fn is_object(&self) -> bool {
        self.kind() == Kind::Object
    }

    /// A string's text, unescaped: borrowed unless it has an escape.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        (self.kind() == Kind::String).then(|| string_text(self.json()))
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
    pub fn id_text(&self) -> Option<Cow<'a, str>> {
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

    /// The member `name` of an object (the last copy of a repeated key); `None` for any
    /// other value.
    pub fn get(&self, name: &str) -> Option<JsonRef<'a>> {
        if !self.is_object() {
            return None;
        }
        match self.members {
            Some(members) => {
                let member = last_named(members, self.document, name)?;
                Some(Self::of_entry(self.document, self.table, member))
            }
            None => self.walk_to(name),
        }
    }

    /// [`Self::get`] of an object the scan did not record: its members walked, none kept.
    fn walk_to(&self, name: &str) -> Option<JsonRef<'a>> {
        let scanner = Scanner::new(self.document);
        let mut at = scanner.ws(self.at + 1);
        let mut found = None;
        while scanner.byte(at) == Some(b'"') {
            let (key_end, start, escaped) = scanner.key(at).ok()?;
            // Nesting was checked when the document was scanned; a depth of 0 is safe here.
            let end = scanner.value(start, 0).ok()?;
            let key = self.document.get(at..key_end)?;
            let named =
                if escaped { key_name(key.as_bytes()) == name } else { key.get(1..key.len() - 1) == Some(name) };
            if named {
                found = Some(Self { document: self.document, table: &[], at: start, end, members: None });
            }
            at = scanner.ws(end);
            if scanner.byte(at) != Some(b',') {
                break;
            }
            at = scanner.ws(at + 1);
        }
        found
    }

    /// An array's items, found as they are iterated.
    pub fn items(&self) -> Option<JsonItems<'a>> {
        let recorded = self.members.map(<[Entry]>::iter);
        let (document, table) = (self.document, self.table);
        (self.kind() == Kind::Array).then_some(JsonItems { document, table, recorded, next: Some(self.at + 1) })
    }
}

impl<'a> Iterator for JsonItems<'a> {
    type Item = JsonRef<'a>;

    fn next(&mut self) -> Option<JsonRef<'a>> {
        if let Some(recorded) = &mut self.recorded {
            return recorded.next().map(|item| JsonRef::of_entry(self.document, self.table, item));
        }
        let scanner = Scanner::new(self.document);
        let at = scanner.ws(self.next?);
        self.next = None;
        if scanner.byte(at) == Some(b']') {
            return None;
        }
        let end = scanner.value(at, 0).ok()?;
        let after = scanner.ws(end);
        if scanner.byte(after) == Some(b',') {
            self.next = Some(after + 1);
        }
        Some(JsonRef { document: self.document, table: &[], at, end, members: None })
    }
}
