//! Event validation: the rules of `Event`'s own check, in the same order, so every path
//! rejects the same inputs with the same error. The rules read fields through
//! [`EventFields`], from the byte spans the scan found: in the gateway's splice and in the
//! stored events a consumer reads back (`crate::stored`).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::raw::{string_text, Member};
use crate::error::EventError;
use crate::event::EventType;
use crate::time::parse_timestamp;

/// The top-level fields validation or the splice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Type,
    Event,
    Name,
    MessageId,
    AnonymousId,
    UserId,
    GroupId,
    PreviousId,
    Properties,
    Traits,
    Context,
    Integrations,
    Timestamp,
    OriginalTimestamp,
    SentAt,
    ReceivedAt,
    WriteKey,
}

const FIELD_COUNT: usize = Field::WriteKey as usize + 1;

impl Field {
    pub(crate) fn of(name: &str) -> Option<Self> {
        Some(match name {
            "type" => Self::Type,
            "event" => Self::Event,
            "name" => Self::Name,
            "messageId" => Self::MessageId,
            "anonymousId" => Self::AnonymousId,
            "userId" => Self::UserId,
            "groupId" => Self::GroupId,
            "previousId" => Self::PreviousId,
            "properties" => Self::Properties,
            "traits" => Self::Traits,
            "context" => Self::Context,
            "integrations" => Self::Integrations,
            "timestamp" => Self::Timestamp,
            "originalTimestamp" => Self::OriginalTimestamp,
            "sentAt" => Self::SentAt,
            "receivedAt" => Self::ReceivedAt,
            "writeKey" => Self::WriteKey,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        const NAMES: [&str; FIELD_COUNT] = [
            "type",
            "event",
            "name",
            "messageId",
            "anonymousId",
            "userId",
            "groupId",
            "previousId",
            "properties",
            "traits",
            "context",
            "integrations",
            "timestamp",
            "originalTimestamp",
            "sentAt",
            "receivedAt",
            "writeKey",
        ];
        NAMES[self as usize]
    }
}

const STRING_FIELDS: [Field; 2] = [Field::Event, Field::Name];
const ID_FIELDS: [Field; 5] = [Field::MessageId, Field::AnonymousId, Field::UserId, Field::GroupId, Field::PreviousId];
const OBJECT_FIELDS: [Field; 4] = [Field::Properties, Field::Traits, Field::Context, Field::Integrations];
pub(crate) const TIME_FIELDS: [Field; 4] =
    [Field::Timestamp, Field::OriginalTimestamp, Field::SentAt, Field::ReceivedAt];

/// The client's `timestamp`, `originalTimestamp`, `sentAt` and `receivedAt`, parsed.
pub(crate) type CheckedTimes = [Option<DateTime<Utc>>; 4];

/// A JSON value's kind, as far as validation tells values apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Integer,
    Float,
    String,
    Array,
    Object,
}

impl Kind {
    /// The kind of a valid JSON value's text. An integer is a number without a fraction or an
    /// exponent, as simd-json (and so the owned path) reads it.
    pub(crate) fn of(span: &[u8]) -> Self {
        match span.first() {
            Some(b'"') => Self::String,
            Some(b'{') => Self::Object,
            Some(b'[') => Self::Array,
            Some(b'n') => Self::Null,
            Some(b't' | b'f') => Self::Bool,
            _ if span.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) => Self::Float,
            _ => Self::Integer,
        }
    }

    /// Worded as [`crate::error::json_type_name`] does.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Integer | Self::Float => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// What the rules read of an event: each field's kind and, for a string, its text.
pub(crate) trait EventFields {
    fn kind(&self, field: Field) -> Option<Kind>;
    fn text(&self, field: Field) -> Option<Cow<'_, str>>;

    /// Whether the field is a string of at least one character.
    fn is_nonempty_string(&self, field: Field) -> bool {
        self.text(field).is_some_and(|text| !text.is_empty())
    }
}

/// An event's known fields as the client's text, found in one pass over its members (of a
/// repeated key the last copy, as serde_json reads it). The text is sliced from the
/// scanned document, which is UTF-8 already, so reading a field does not check it again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known<'r> {
    values: [Option<&'r str>; FIELD_COUNT],
}

impl<'r> Known<'r> {
    /// `text` is the scanned document, which the members' offsets ([`Member::at`]) index.
    pub(crate) fn new(text: &'r str, members: &[Member<'r>]) -> Self {
        Self::of_values(
            members.iter().map(|member| (&member.name, text.get(member.at..member.at + member.value.len()))),
        )
    }

    /// From each member's name and value text, in order: of a repeated name the last counts.
    pub(crate) fn of_values<N: AsRef<str>>(members: impl IntoIterator<Item = (N, Option<&'r str>)>) -> Self {
        let mut known = Self::default();
        for (name, value) in members {
            if let Some(field) = Field::of(name.as_ref()) {
                known.values[field as usize] = value;
            }
        }
        known
    }

    pub(crate) fn get(&self, field: Field) -> Option<&'r [u8]> {
        self.values[field as usize].map(str::as_bytes)
    }

    /// The field's text, when it is a string.
    pub(crate) fn string(&self, field: Field) -> Option<Cow<'r, str>> {
        self.values[field as usize].filter(|json| json.starts_with('"')).map(string_text)
    }

    /// The field as an id's text: a string as sent, an integer as its decimal text.
    pub(crate) fn id(&self, field: Field) -> Option<Cow<'r, str>> {
        self.values[field as usize].and_then(id_text)
    }
}

impl EventFields for Known<'_> {
    fn kind(&self, field: Field) -> Option<Kind> {
        self.get(field).map(Kind::of)
    }

    fn text(&self, field: Field) -> Option<Cow<'_, str>> {
        self.string(field)
    }

    /// An escape always stands for a character, so only `""` is empty: no need to unescape.
    fn is_nonempty_string(&self, field: Field) -> bool {
        self.get(field).is_some_and(|span| span.first() == Some(&b'"') && span.len() > 2)
    }
}

/// The text an id field is written with: a string as sent, an integer as its decimal text
/// (`-0` is the only integer JSON may spell otherwise).
pub(crate) fn id_text(json: &str) -> Option<Cow<'_, str>> {
    match Kind::of(json.as_bytes()) {
        Kind::String => Some(string_text(json)),
        Kind::Integer if json == "-0" => Some(Cow::Borrowed("0")),
        Kind::Integer => Some(Cow::Borrowed(json)),
        _ => None,
    }
}

/// Checks an event's fields; the same rules, order and errors as `Event::from_value`.
pub(crate) fn check(
    fields: &impl EventFields,
    endpoint_type: Option<EventType>,
) -> Result<(EventType, CheckedTimes), EventError> {
    let kind = match (fields.kind(Field::Type), endpoint_type) {
        (None | Some(Kind::Null), Some(expected)) => expected,
        (None | Some(Kind::Null), None) => return Err(EventError::MissingField("type")),
        (Some(Kind::String), expected) => {
            let name = fields.text(Field::Type).unwrap_or_default();
            let kind = EventType::parse(&name).ok_or_else(|| EventError::UnknownType(name.to_string()))?;
            match expected {
                Some(expected) if expected != kind => {
                    return Err(EventError::TypeMismatch { expected: expected.as_str(), found: name.to_string() })
                }
                _ => kind,
            }
        }
        (Some(other), _) => return Err(wrong_type(Field::Type, "a string", other)),
    };
    for field in STRING_FIELDS {
        if let Some(k) = fields.kind(field).filter(|k| !matches!(k, Kind::Null | Kind::String)) {
            return Err(wrong_type(field, "a string", k));
        }
    }
    // Several SDKs send numeric ids (user ids, and message ids from some server libraries);
    // they are kept as their decimal text.
    for field in ID_FIELDS {
        if let Some(k) = fields.kind(field).filter(|k| !matches!(k, Kind::Null | Kind::String | Kind::Integer)) {
            return Err(wrong_type(field, "a string", k));
        }
    }
    for field in OBJECT_FIELDS {
        if let Some(k) = fields.kind(field).filter(|k| !matches!(k, Kind::Null | Kind::Object)) {
            return Err(wrong_type(field, "an object", k));
        }
    }
    let mut times = [None; 4];
    for (slot, field) in times.iter_mut().zip(TIME_FIELDS) {
        *slot = match fields.kind(field) {
            None | Some(Kind::Null) => None,
            Some(Kind::String) => {
                let text = fields.text(field).unwrap_or_default();
                let time = parse_timestamp(&text);
                Some(time.ok_or_else(|| EventError::BadTimestamp { field: field.name(), value: text.to_string() })?)
            }
            Some(other) => return Err(wrong_type(field, "a string", other)),
        };
    }
    let present = |field: Field| match fields.kind(field) {
        Some(Kind::String) => fields.is_nonempty_string(field),
        Some(kind) => matches!(kind, Kind::Integer | Kind::Float),
        None => false,
    };
    if !present(Field::AnonymousId) && !present(Field::UserId) {
        return Err(EventError::MissingIdentity);
    }
    match kind.required_field() {
        Some(name) if !Field::of(name).is_some_and(present) => Err(EventError::MissingField(name)),
        _ => Ok((kind, times)),
    }
}

fn wrong_type(field: Field, expected: &'static str, got: Kind) -> EventError {
    EventError::WrongType { field: field.name(), expected, got: got.type_name() }
}
