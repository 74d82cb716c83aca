//! Topic names and dynamic topic templates such as `events.{source}`.

use clickstream_schema::Event;

/// Kafka's limit on topic name length.
const MAX_TOPIC_LEN: usize = 249;

/// Checks a fixed topic name against Kafka's rules: 1 to 249 of `[a-zA-Z0-9._-]`.
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty topic name".to_owned());
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(format!("topic `{name}` is longer than {MAX_TOPIC_LEN} characters"));
    }
    if name == "." || name == ".." {
        return Err(format!("topic `{name}` is not a valid name"));
    }
    match name.chars().find(|c| !is_topic_char(*c)) {
        Some(bad) => Err(format!("topic `{name}` has `{bad}`; topic names use only a-z, A-Z, 0-9, `.`, `_` and `-`")),
        None => Ok(()),
    }
}

fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// True for names with a `{placeholder}`.
pub(crate) fn is_template(name: &str) -> bool {
    name.contains('{')
}

/// What a placeholder expands to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Source,
    Type,
    Event,
}

impl Field {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "source" => Some(Self::Source),
            "type" => Some(Self::Type),
            "event" => Some(Self::Event),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Type => "type",
            Self::Event => "event",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

/// A topic name, fixed or with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    text: String,
    parts: Vec<Part>,
}

impl TopicTemplate {
    /// Parses `events.{source}`; a name without braces must be a valid topic name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close =
                rest[open..].find('}').map(|c| open + c).ok_or_else(|| format!("`{text}` has an unclosed `{{`"))?;
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let name = &rest[open + 1..close];
            let field = Field::parse(name).ok_or_else(|| {
                format!("`{text}` has unknown placeholder `{{{name}}}`: use `{{source}}`, `{{type}}` or `{{event}}`")
            })?;
            parts.push(Part::Field(field));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        for part in &parts {
            if let Part::Literal(literal) = part {
                if let Some(bad) = literal.chars().find(|c| !is_topic_char(*c)) {
                    return Err(format!("`{text}` has `{bad}`; topic names use only a-z, A-Z, 0-9, `.`, `_` and `-`"));
                }
            }
        }
        if parts.iter().all(|p| matches!(p, Part::Literal(_))) {
            check_topic_name(text)?;
        }
        Ok(Self { text: text.to_owned(), parts })
    }

    /// A fixed name taken as it is, unchecked: for the raw topic that the gateway was told to use.
    pub(crate) fn fixed(name: &str) -> Self {
        Self { text: name.to_owned(), parts: vec![Part::Literal(name.to_owned())] }
    }

    pub fn is_dynamic(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The topic name for one event, or the placeholder that has no value for it. Values
    /// are lowercased, and characters a topic name cannot hold become `_`, so
    /// `Order Completed` gives `order_completed`.
    pub fn expand(&self, event: &Event, source: &str) -> Result<String, Field> {
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(literal) => out.push_str(literal),
                Part::Field(field) => {
                    let value = match field {
                        Field::Source => Some(source),
                        Field::Type => Some(event.kind.as_str()),
                        Field::Event => crate::router::event_name(event),
                    };
                    let value = value.filter(|v| !v.is_empty()).ok_or(*field)?;
                    out.extend(value.chars().map(|c| if is_topic_char(c) { c.to_ascii_lowercase() } else { '_' }));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fixed_names_follow_kafka_rules() {
        assert!(check_topic_name("events.raw").is_ok());
        assert!(check_topic_name("events raw").is_err());
        assert!(check_topic_name("").is_err());
        assert!(check_topic_name(&"x".repeat(250)).is_err());
        assert!(TopicTemplate::parse("events/raw").is_err());
    }

    #[test]
    fn templates_expand_sanitized_values() {
        let event = Event::from_value(json!({"type": "track", "event": "Order Completed", "userId": "u"}), None)
            .expect("event");
        let template = TopicTemplate::parse("events.{type}.{event}").expect("template");
        assert!(template.is_dynamic());
        assert_eq!(template.expand(&event, "Web").as_deref(), Ok("events.track.order_completed"));
        assert_eq!(
            TopicTemplate::parse("events.{source}").expect("t").expand(&event, "Web").as_deref(),
            Ok("events.web")
        );
        let identify = Event::from_value(json!({"type": "identify", "userId": "u"}), None).expect("event");
        assert_eq!(template.expand(&identify, "web"), Err(Field::Event));
        assert!(TopicTemplate::parse("events.{user}").is_err());
        assert!(TopicTemplate::parse("events.{source").is_err());
        assert!(!TopicTemplate::parse("events.raw").expect("fixed").is_dynamic());
    }
}
