//! Campaign enrichment: UTM parameters from the page URL, else Segment's `context.campaign`.

use serde_json::{Map, Value};

const UTM: [(&str, &str); 5] = [
    ("utm_source", "source"),
    ("utm_medium", "medium"),
    ("utm_campaign", "name"),
    ("utm_term", "term"),
    ("utm_content", "content"),
];

/// The campaign an event came from, or null when it names none.
pub fn extract(page_url: Option<&str>, context_campaign: Option<&Map<String, Value>>) -> Value {
    let mut campaign = Map::new();
    if let Some(url) = page_url.and_then(|u| url::Url::parse(u).ok()) {
        for (key, value) in url.query_pairs() {
            if let Some((_, field)) = UTM.iter().find(|(param, _)| key.eq_ignore_ascii_case(param)) {
                if !value.is_empty() {
                    campaign.insert((*field).to_owned(), Value::String(value.into_owned()));
                }
            }
        }
    }
    if campaign.is_empty() {
        if let Some(context) = context_campaign {
            for (_, field) in UTM {
                if let Some(Value::String(value)) = context.get(field).filter(|v| v.as_str() != Some("")) {
                    campaign.insert(field.to_owned(), Value::String(value.clone()));
                }
            }
        }
    }
    if campaign.is_empty() {
        Value::Null
    } else {
        Value::Object(campaign)
    }
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
