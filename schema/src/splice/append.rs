//! Adding one member to a stored event without rebuilding it: what the enricher does to the
//! events the gateway wrote. Every other member is copied as stored, bytes and order, except
//! `context.ip`, which may be replaced (IP masking).

use super::raw::Member;
use super::scan::{self, Root};

/// `event` (a JSON object already known to be valid) with the member `name` added as
/// `value` (its JSON text), and `context.ip`, where it is a string, set to `context_ip`.
/// `None` when the object already has a member `name` (the caller then writes the event whole,
/// rather than guessing which of two copies a reader would keep), or is not a JSON object.
pub fn append_member(event: &[u8], name: &str, value: &[u8], context_ip: Option<&str>) -> Option<Vec<u8>> {
    let members = scan::document(event, Root::Event).ok()?.members;
    if members.is_empty() && event.trim_ascii().first() != Some(&b'{') {
        return None;
    }
    if members.iter().any(|member| member.name == name) {
        return None;
    }
    let mut out = Vec::with_capacity(event.len() + value.len() + name.len() + 8);
    out.push(b'{');
    for member in &members {
        out.extend_from_slice(member.key);
        out.push(b':');
        match (member.name.as_ref(), context_ip) {
            ("context", Some(ip)) if member.value.first() == Some(&b'{') => write_context(&mut out, member, ip),
            _ => out.extend_from_slice(member.value),
        }
        out.push(b',');
    }
    close_with_member(out, name, value)
}

/// Ends an object whose members (each followed by a comma) are in `out` with the member
/// `name`, whose JSON text is `value`.
pub(crate) fn close_with_member(mut out: Vec<u8>, name: &str, value: &[u8]) -> Option<Vec<u8>> {
    crate::write_json_str(&mut out, name);
    out.push(b':');
    out.extend_from_slice(value);
    out.push(b'}');
    Some(out)
}

/// The context object with its `ip` string replaced; copied as stored when it has none.
fn write_context(out: &mut Vec<u8>, context: &Member<'_>, ip: &str) {
    let members = &context.members;
    if !members.iter().any(|m| m.name == "ip" && m.value.first() == Some(&b'"')) {
        out.extend_from_slice(context.value);
        return;
    }
    out.push(b'{');
    for (index, member) in members.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(member.key);
        out.push(b':');
        if member.name == "ip" && member.value.first() == Some(&b'"') {
            // A `String`'s JSON text is always writable.
            let _ = serde_json::to_writer(&mut *out, ip);
        } else {
            out.extend_from_slice(member.value);
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    #[test]
    fn appends_and_keeps_every_other_byte() {
        let event = br#"{ "type":"track", "n": 1.50, "context": {"ip":"203.0.113.7","page":{"url":"u"}} }"#;
        let out = append_member(event, "enrichment", br#"{"a":1}"#, Some("203.0.113.0")).expect("spliced");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"type":"track","n":1.50,"context":{"ip":"203.0.113.0","page":{"url":"u"}},"enrichment":{"a":1}}"#
        );
    }

    #[test]
    fn leaves_context_alone_without_an_ip_and_refuses_a_second_copy() {
        let event = br#"{"context":{"locale":"en"},"userId":"u"}"#;
        let out = append_member(event, "enrichment", b"null", Some("x")).expect("spliced");
        assert_eq!(parsed(&out), json!({"context": {"locale": "en"}, "userId": "u", "enrichment": null}));
        assert_eq!(append_member(br#"{"enrichment":{}}"#, "enrichment", b"1", None), None);
        let empty = append_member(b"{}", "enrichment", b"1", None).expect("spliced");
        assert_eq!(parsed(&empty), json!({"enrichment": 1}));
    }

    #[test]
    fn a_repeated_key_keeps_its_last_copy_as_serde_reads_it() {
        let event = br#"{"a":1,"a":2,"context":{"ip":"1.1.1.1","ip":"2.2.2.2"}}"#;
        let out = append_member(event, "e", b"0", Some("9.9.9.9")).expect("spliced");
        assert_eq!(parsed(&out), json!({"a": 2, "context": {"ip": "9.9.9.9"}, "e": 0}));
    }
}
