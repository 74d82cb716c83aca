//! Why a single event was rejected, as a stable machine-readable kind plus a human message.

/// A reason one event cannot be accepted. The `Display` text names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}, got {got}")]
    WrongType { field: &'static str, expected: &'static str, got: &'static str },
    #[error("unknown event type `{0}`; expected one of track, page, screen, identify, group, alias")]
    UnknownType(String),
    #[error("event type `{found}` does not match endpoint for `{expected}`")]
    TypeMismatch { expected: &'static str, found: String },
    #[error("event needs a non-empty `anonymousId` or `userId`")]
    MissingIdentity,
    #[error("field `{field}` is not an ISO-8601 timestamp: {value:?}")]
    BadTimestamp { field: &'static str, value: String },
    #[error("event is {size} bytes, over the {limit}-byte limit per event")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
}

impl EventError {
    /// A short stable code for metrics, JSON responses and dead-letter records.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotAnObject(_) => "not_an_object",
            Self::MissingField(_) => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::UnknownType(_) => "unknown_type",
            Self::TypeMismatch { .. } => "type_mismatch",
            Self::MissingIdentity => "missing_identity",
            Self::BadTimestamp { .. } => "bad_timestamp",
            Self::TooLarge { .. } => "event_too_large",
            Self::InvalidJson(_) => "invalid_json",
        }
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
