//! Campaign enrichment: UTM parameters from the page URL, else Segment's `context.campaign`.

use std::borrow::Cow;

use clickstream_schema::JsonRef;
#[cfg(test)]
use serde_json::Value;

use super::url_parts::UrlParts;
use super::write_str;

const UTM: [(&str, &str); 5] = [
    ("utm_source", "source"),
    ("utm_medium", "medium"),
    ("utm_campaign", "name"),
    ("utm_term", "term"),
    ("utm_content", "content"),
];

/// The campaign an event came from, or null when it names none.
#[cfg(test)]
pub fn extract(page_url: Option<&str>, context_campaign: Option<&serde_json::Map<String, Value>>) -> Value {
    let page = page_url.and_then(UrlParts::parse);
    let context = context_campaign.map(|c| serde_json::to_string(c).unwrap_or_default());
    let context = context.as_deref().and_then(JsonRef::parse);
    let mut out = Vec::new();
    extract_into(page.as_ref(), context, &mut out);
    serde_json::from_slice(&out).unwrap_or_default()
}

/// Writes the `campaign` enrichment: UTM parameters from the page URL, else Segment's
/// `context.campaign`; null when neither names one.
pub fn extract_into(page_url: Option<&UrlParts<'_>>, context_campaign: Option<JsonRef<'_>>, out: &mut Vec<u8>) {
    let mut campaign: Vec<(&str, Cow<'_, str>)> = Vec::new();
    if let Some(url) = page_url {
        for (key, value) in url.query_pairs() {
            if let Some((_, field)) = UTM.iter().find(|(param, _)| key.eq_ignore_ascii_case(param)) {
                if !value.is_empty() {
                    // A repeated parameter keeps its first place and its last value.
                    match campaign.iter_mut().find(|(known, _)| known == field) {
                        Some((_, known)) => *known = value,
                        None => campaign.push((field, value)),
                    }
                }
            }
        }
    }
    if campaign.is_empty() {
        if let Some(context) = context_campaign {
            for (_, field) in UTM {
                if let Some(value) = context.get(field).and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
                    campaign.push((field, value));
                }
            }
        }
    }
    if campaign.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    out.push(b'{');
    for (index, (field, value)) in campaign.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(out, field);
        out.push(b':');
        write_str(out, value);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn utm_from_url_wins_over_context() {
        let url = "https://shop.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=mug&utm_content=hero";
        let context = json!({"name": "other", "source": "ctx"});
        let got = extract(Some(url), context.as_object());
        assert_eq!(got, json!({"source":"newsletter","medium":"email","name":"spring","term":"mug","content":"hero"}));
    }

    #[test]
    fn context_campaign_when_url_has_none() {
        let context = json!({"name": "fall", "source": "google", "medium": "cpc", "unrelated": 1});
        let got = extract(Some("https://shop.example.com/p/1"), context.as_object());
        assert_eq!(got, json!({"source":"google","medium":"cpc","name":"fall"}));
        assert_eq!(extract(Some("https://shop.example.com/?utm_source="), None), Value::Null);
        assert_eq!(extract(None, None), Value::Null);
    }
}
