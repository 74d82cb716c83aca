//! The `dev` demo shop: a page of products from the sample catalog whose buttons carry
//! `data-ct-event` attributes, so clicking them sends events through the JS tracker (`/t.js`).

use std::fmt::Write as _;

use serde_json::Value;

const CATALOG: &str = include_str!("../../data/products.jsonl");
/// Enough products to click around, few enough to see at once.
const PRODUCTS_SHOWN: usize = 12;

/// The shop page, loading the tracker from `gateway_url` with `write_key`, and linking to the
/// console where its clicks show up, when there is one.
pub fn page(gateway_url: &str, write_key: &str, console_url: Option<&str>) -> anyhow::Result<String> {
    let mut cards = String::new();
    for line in CATALOG.lines().take(PRODUCTS_SHOWN) {
        let product: Value = serde_json::from_str(line)?;
        let text = |field: &str| escape(product[field].as_str().unwrap_or_default());
        let (id, name, category) = (text("id"), text("name"), text("category"));
        let price = product["price"].as_f64().unwrap_or_default();
        let props = format!(
            r#"data-ct-prop-product-id="{id}" data-ct-prop-name="{name}" data-ct-prop-category="{category}" data-ct-prop-price="{price}""#
        );
        write!(
            cards,
            r#"
  <li class="card" id="{id}">
    <h2>{name}</h2>
    <p>{brand} &middot; {category} &middot; <b>${price:.2}</b></p>
    <button data-ct-event="Product Clicked" {props}>Details</button>
    <button data-ct-event="Product Added" {props} data-ct-prop-quantity="1">Add to cart</button>
  </li>"#,
            brand = text("brand"),
        )?;
    }
    let (gateway, key) = (escape(gateway_url), escape(write_key));
    let watch = match console_url {
        Some(console) => format!(
            r#"Watch them arrive, raw and enriched, in the <a id="console" href="{}" target="_blank">console</a>, or"#,
            escape(console)
        ),
        None => "Read them".to_owned(),
    };
    Ok(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>clickstream demo shop</title>
<script>window.ct = window.ct || function () {{ (ct.q = ct.q || []).push(arguments) }}</script>
<script defer src="{gateway}/t.js" data-write-key="{key}"></script>
<style>
  body {{ font: 15px system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem }}
  ul {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: 1rem; padding: 0 }}
  .card {{ list-style: none; border: 1px solid #ccc; border-radius: 8px; padding: 1rem }}
  h2 {{ font-size: 1rem; margin: 0 0 .5rem }}
</style>
</head>
<body>
<h1>clickstream demo shop</h1>
<p>Every button sends an event through <code>{gateway}/t.js</code> to <code>events.raw</code>.
{watch} with the <code>clickstream tail</code> command that <code>clickstream dev</code> printed.
Browsers driven by automation (<code>navigator.webdriver</code>) send nothing.</p>
<ul>{cards}
</ul>
<p><button data-ct-event="Checkout Started">Checkout</button>
<a href="https://www.example.com/">An outbound link</a></p>
</body>
</html>
"#
    ))
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_the_tracker_and_tags_catalog_products() {
        let html =
            page("http://127.0.0.1:8080", "demo-write-key", Some("http://127.0.0.1:9464/console")).expect("page");
        assert!(html.contains(r#"<a id="console" href="http://127.0.0.1:9464/console""#));
        assert!(html.contains(r#"<script defer src="http://127.0.0.1:8080/t.js" data-write-key="demo-write-key">"#));
        assert_eq!(html.matches(r#"data-ct-event="Product Added""#).count(), PRODUCTS_SHOWN);
        assert!(html.contains(r#"data-ct-prop-product-id="p1""#));
        assert!(html.contains(r#"data-ct-prop-price="18.29""#));
        assert!(html.contains("Larkspur Press Mini Weeknight Cookbook"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }
}
