//! What the console and `clickstream tail` read from a record to show and filter it: the source,
//! type, event name, identities and `messageId` of an event, a dead letter's reason, and the
//! filters both offer.

use std::borrow::Cow;

use serde::Deserialize;

/// The fields a record is shown and filtered by. Dead letters are summarized by the event they
/// carry, with their reason added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The `source` header, or a dead letter's `source` field.
    pub source: Option<String>,
    /// `type`: track, page, identify, ...
    pub kind: Option<String>,
    /// `event` of a track, `name` of a page or screen.
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub message_id: Option<String>,
    /// A dead letter's `reasonKind` and `reason`.
    pub rejection: Option<(String, String)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFields<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    user_id: Option<serde_json::Value>,
    #[serde(default)]
    anonymous_id: Option<serde_json::Value>,
    #[serde(borrow, default)]
    message_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LetterFields<'a> {
    #[serde(borrow)]
    reason_kind: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(default)]
    payload: serde_json::Value,
}

/// Ids may be numbers in what clients send; they are shown and matched as text.
fn id_text(value: Option<serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(text) if !text.is_empty() => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

impl Summary {
    /// Summarizes a record's JSON payload; `source_header` is its `source` header. A dead letter
    /// (an object with `reasonKind` and `reason`) is summarized by the event it carries.
    pub fn of(payload: &[u8], source_header: Option<&str>) -> Self {
        if let Ok(letter) = serde_json::from_slice::<LetterFields<'_>>(payload) {
            let inner = serde_json::to_vec(&letter.payload).unwrap_or_default();
            let mut summary = Self::of_event(&inner);
            summary.source = letter.source.map(Cow::into_owned).or_else(|| source_header.map(str::to_owned));
            summary.rejection = Some((letter.reason_kind.into_owned(), letter.reason.into_owned()));
            return summary;
        }
        let mut summary = Self::of_event(payload);
        summary.source = source_header.map(str::to_owned);
        summary
    }

    fn of_event(payload: &[u8]) -> Self {
        let Ok(fields) = serde_json::from_slice::<EventFields<'_>>(payload) else { return Self::default() };
        let named = matches!(fields.kind.as_deref(), Some("page" | "screen"));
        let event = if named { fields.name.or(fields.event) } else { fields.event };
        Self {
            source: None,
            kind: fields.kind.map(Cow::into_owned),
            event: event.map(Cow::into_owned),
            user_id: id_text(fields.user_id),
            anonymous_id: id_text(fields.anonymous_id),
            message_id: fields.message_id.map(Cow::into_owned),
            rejection: None,
        }
    }

    /// The event name, else the type: what a list shows first.
    pub fn label(&self) -> &str {
        self.event.as_deref().or(self.kind.as_deref()).unwrap_or("?")
    }
}

/// The filters of the console and of `clickstream tail`. Each set filter must match; names and
/// types compare without regard to ASCII case, ids exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub source: Option<String>,
    /// The event name (`event` of a track, `name` of a page or screen).
    pub event: Option<String>,
    /// The event type.
    pub kind: Option<String>,
    /// A `userId` or an `anonymousId`.
    pub user: Option<String>,
}

impl Filter {
    /// A filter from a query string's `source`, `event`, `type` and `user`; empty values are unset.
    pub fn from_query(query: &str) -> Self {
        let mut filter = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            match &*key {
                "source" => filter.source = value,
                "event" => filter.event = value,
                "type" => filter.kind = value,
                "user" => filter.user = value,
                _ => {}
            }
        }
        filter
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, summary: &Summary) -> bool {
        let same = |wanted: &Option<String>, found: &Option<String>| match wanted {
            None => true,
            Some(wanted) => found.as_deref().is_some_and(|found| found.eq_ignore_ascii_case(wanted)),
        };
        let user = match &self.user {
            None => true,
            Some(user) => [&summary.user_id, &summary.anonymous_id].iter().any(|id| id.as_deref() == Some(user)),
        };
        same(&self.source, &summary.source)
            && same(&self.event, &summary.event)
            && same(&self.kind, &summary.kind)
            && user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_dead_letters_are_summarized_and_filtered() {
        let track = br#"{"type":"track","event":"Order Completed","userId":42,"anonymousId":"a1","messageId":"m1"}"#;
        let summary = Summary::of(track, Some("web"));
        assert_eq!(summary.label(), "Order Completed");
        assert_eq!(summary.user_id.as_deref(), Some("42"));
        assert_eq!(summary.source.as_deref(), Some("web"));
        let page = Summary::of(br#"{"type":"page","name":"Home","anonymousId":"a2"}"#, None);
        assert_eq!((page.label(), page.kind.as_deref()), ("Home", Some("page")));
        let identify = Summary::of(br#"{"type":"identify","userId":"u1"}"#, None);
        assert_eq!(identify.label(), "identify");

        let letter = br#"{"reasonKind":"missing_identity","reason":"event needs a non-empty `anonymousId` or `userId`","source":"web","index":1,"receivedAt":"x","payload":{"type":"track","event":"Bad"}}"#;
        let rejected = Summary::of(letter, Some("ignored"));
        assert_eq!(rejected.source.as_deref(), Some("web"));
        assert_eq!(rejected.label(), "Bad");
        assert_eq!(rejected.rejection.as_ref().map(|r| r.0.as_str()), Some("missing_identity"));
        assert_eq!(Summary::of(b"not json", Some("web")).label(), "?");

        let filter = Filter::from_query("event=order%20completed&source=WEB&user=a1&type=");
        assert_eq!(filter.kind, None);
        assert!(filter.matches(&summary));
        assert!(!filter.matches(&page));
        assert!(!Filter { user: Some("a2".into()), ..Filter::default() }.matches(&summary));
        assert!(Filter::default().matches(&rejected) && Filter::default().is_empty());
    }
}
