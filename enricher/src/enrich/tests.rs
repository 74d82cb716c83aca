use super::*;
use crate::products::ProductChange;
use clickstream_schema::Event;
use serde_json::json;

/// Enriches an owned event through the enricher's byte path, and leaves `enrichment` and the
/// IP on it as the enricher writes them.
fn enrich(enrichers: &Enrichers, event: &mut Event, session: &SessionView) -> EnrichReport {
    let stored = event.to_json();
    let parsed = StoredEvent::parse(&stored).expect("valid stored event");
    let mut out = Vec::new();
    let report = enrichers.enrich(&parsed, 0, session, &mut out);
    event.extra.insert("enrichment".into(), serde_json::from_slice(&out).expect("enrichment is JSON"));
    if let Some(ip) = &report.masked_ip {
        event.context_mut().insert("ip".into(), json!(ip));
    }
    report
}

fn table() -> ProductTable {
    let table = ProductTable::default();
    let row = json!({"id": "p1", "name": "Mug", "price": 9.5, "currency": "USD"});
    table.apply(ProductChange::Upsert { id: "p1".into(), row: row.as_object().cloned().unwrap_or_default() });
    table
}

fn session() -> SessionView {
    SessionView { id: "s1".into(), sequence: 3, start_ms: 1_700_000_000_000 }
}

fn event(value: Value) -> Event {
    Event::from_value(value, None).expect("valid event")
}

#[test]
fn joins_products_and_fills_every_enrichment() {
    let enrichers = Enrichers::new(table(), IpSettings::default()).expect("enrichers");
    let mut e = event(json!({
        "type": "track", "event": "Product Viewed", "anonymousId": "a1",
        "properties": {"product_id": "p1"},
        "context": {
            "ip": "203.0.113.77",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "page": {"url": "https://shop.example.com/p/1?utm_source=news&utm_medium=email", "referrer": "https://www.bing.com/"}
        }
    }));
    let report = enrich(&enrichers, &mut e, &session());
    let enrichment = &e.extra["enrichment"];
    assert_eq!(enrichment["product"]["name"], "Mug");
    assert_eq!(enrichment["product"]["price"], 9.5);
    assert_eq!(enrichment["userAgent"]["browser"], "Chrome");
    assert_eq!(enrichment["referrer"]["medium"], "search");
    assert_eq!(enrichment["campaign"]["source"], "news");
    assert_eq!(enrichment["session"]["id"], "s1");
    assert_eq!(enrichment["session"]["sequence"], 3);
    assert_eq!(enrichment["session"]["start"], "2023-11-14T22:13:20.000Z");
    assert_eq!(e.context.as_ref().and_then(|c| c.get("ip")), Some(&json!("203.0.113.0")));
    assert_eq!(report.line_items, vec![LineItem { product_id: "p1".into(), quantity: 1.0, revenue: 0.0 }]);
    assert_eq!(report.join_misses, 0);
}

#[test]
fn unknown_products_are_null_and_counted() {
    let enrichers =
        Enrichers::new(table(), IpSettings { anonymize: false, ..IpSettings::default() }).expect("enrichers");
    let mut e = event(json!({
        "type": "track", "event": "Order Completed", "userId": "u1",
        "context": {"ip": "203.0.113.77"},
        "properties": {"products": [
            {"product_id": "p1", "quantity": 2},
            {"product_id": "nope", "price": 4.0},
            {"sku": "no-id"}
        ]}
    }));
    let report = enrich(&enrichers, &mut e, &session());
    let enrichment = &e.extra["enrichment"];
    assert_eq!(enrichment["product"], Value::Null);
    assert_eq!(enrichment["products"][0]["name"], "Mug");
    assert_eq!(enrichment["products"][1], Value::Null);
    assert_eq!(report.join_misses, 1);
    assert_eq!(
        report.line_items,
        vec![
            LineItem { product_id: "p1".into(), quantity: 2.0, revenue: 19.0 },
            LineItem { product_id: "nope".into(), quantity: 1.0, revenue: 4.0 },
        ]
    );
    assert_eq!(e.context.as_ref().and_then(|c| c.get("ip")), Some(&json!("203.0.113.77")));
    assert_eq!(enrichment["referrer"]["medium"], "direct");
    assert_eq!(enrichment["campaign"], Value::Null);
}

#[test]
fn geoip_looks_up_the_full_address_before_masking_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("city.mmdb");
    super::geo::tests::write_test_database(&path);
    let ip = IpSettings { geoip_database: Some(path), ..IpSettings::default() };
    let enrichers = Enrichers::new(table(), ip).expect("enrichers");
    let mut e = event(json!({"type": "page", "anonymousId": "a", "context": {"ip": "203.0.113.77"}}));
    enrich(&enrichers, &mut e, &session());
    assert_eq!(e.extra["enrichment"]["geo"], json!({"country": "AU", "region": "NSW", "city": "Sydney"}));
    assert_eq!(e.context.as_ref().and_then(|c| c.get("ip")), Some(&json!("203.0.113.0")));
}
