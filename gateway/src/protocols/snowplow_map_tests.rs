//! The Snowplow → Segment mapping, field by field, as docs/send-from-your-tracker.md's table has it.

use base64::Engine as _;
use serde_json::{json, Value};

use super::{to_segment, RequestFacts};

fn facts() -> RequestFacts<'static> {
    RequestFacts { network_user_id: Some("net-1"), key_app_id: Some("wk_1") }
}

fn mapped(event: Value) -> Value {
    to_segment(0, event, &facts()).expect("maps")
}

fn kind_of_rejection(event: Value) -> &'static str {
    to_segment(3, event, &facts()).expect_err("rejected").0.kind
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn a_page_view_carries_page_browser_ids_and_times() {
    let event = mapped(json!({
        "e": "pv", "eid": "e-1", "aid": "wk_1", "p": "web", "tv": "js-4.10.1", "tna": "sp",
        "duid": "d-1", "uid": "u-1", "sid": "s-1", "vid": "3",
        "url": "https://shop.example/p/1?utm_source=x#top", "refr": "https://search.example/", "page": "Product 1",
        "ua": "Mozilla/5.0", "lang": "en-GB", "tz": "Europe/London", "res": "1920x1080", "vp": "1280x720",
        "cd": "24", "cookie": "1", "dtm": "1700000000000", "stm": "1700000000500",
    }));
    assert_eq!(event["type"], "page");
    assert_eq!((event["userId"].as_str(), event["anonymousId"].as_str()), (Some("u-1"), Some("d-1")));
    assert_eq!(event["messageId"], "e-1");
    let page = &event["context"]["page"];
    assert_eq!(page["url"], "https://shop.example/p/1?utm_source=x#top");
    assert_eq!((page["path"].as_str(), page["search"].as_str()), (Some("/p/1"), Some("?utm_source=x")));
    assert_eq!(
        (page["referrer"].as_str(), page["title"].as_str()),
        (Some("https://search.example/"), Some("Product 1"))
    );
    assert_eq!(event["properties"]["title"], "Product 1", "a page call has its page in properties too");
    let context = &event["context"];
    assert_eq!(
        (context["userAgent"].as_str(), context["locale"].as_str(), context["timezone"].as_str()),
        (Some("Mozilla/5.0"), Some("en-GB"), Some("Europe/London"))
    );
    assert_eq!(context["screen"], json!({"width": 1920, "height": 1080, "innerWidth": 1280, "innerHeight": 720}));
    assert_eq!(context["library"], json!({"name": "snowplow-js", "version": "4.10.1"}));
    assert_eq!(context["sessionId"], "s-1");
    assert_eq!(event["originalTimestamp"], "2023-11-14T22:13:20.000Z");
    assert_eq!(event["sentAt"], "2023-11-14T22:13:20.500Z");
    let snowplow = &context["snowplow"];
    assert_eq!(snowplow["sessionIndex"], 3);
    assert_eq!((snowplow["platform"].as_str(), snowplow["namespace"].as_str()), (Some("web"), Some("sp")));
    assert_eq!(snowplow["networkUserId"], "net-1");
    assert_eq!((snowplow["cd"].as_str(), snowplow["cookie"].as_str()), (Some("24"), Some("1")), "kept as sent");
    assert!(snowplow.get("appId").is_none(), "the app id that was the write key is not stored");
}

#[test]
fn ping_structured_and_self_describing_events_are_tracks() {
    let ping = mapped(json!({"e": "pp", "pp_mix": "0", "pp_max": "10", "pp_miy": "5", "pp_may": "800", "duid": "d"}));
    assert_eq!((ping["type"].as_str(), ping["event"].as_str()), (Some("track"), Some("Page Ping")));
    assert_eq!(ping["properties"], json!({"minXOffset": 0, "maxXOffset": 10, "minYOffset": 5, "maxYOffset": 800}));

    let structured = mapped(json!({"e": "se", "se_ca": "shop", "se_ac": "add", "se_la": "red", "se_pr": "size",
        "se_va": "2.5", "duid": "d"}));
    assert_eq!(structured["event"], "add");
    assert_eq!(
        structured["properties"],
        json!({"category": "shop", "action": "add", "label": "red", "property": "size", "value": 2.5})
    );

    let inner = json!({"schema": "iglu:com.acme/link_click/jsonschema/1-0-1", "data": {"target": "/x", "n": 1}});
    let envelope =
        json!({"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0", "data": inner});
    for encoded in [
        json!({"e": "ue", "ue_px": b64(&envelope), "duid": "d"}),
        json!({"e": "ue", "ue_pr": envelope.to_string(), "duid": "d"}),
    ] {
        let event = mapped(encoded);
        assert_eq!(event["event"], "link_click");
        assert_eq!(event["properties"], json!({"target": "/x", "n": 1}));
        assert_eq!(event["context"]["snowplow"]["schema"], "iglu:com.acme/link_click/jsonschema/1-0-1");
    }
}

#[test]
fn transactions_and_items_are_the_ecommerce_events() {
    let order = mapped(json!({"e": "tr", "tr_id": "o-1", "tr_af": "web", "tr_tt": "42.5", "tr_tx": "4", "tr_sh": "3",
        "tr_ci": "Leeds", "tr_co": "UK", "tr_cu": "GBP", "uid": "u"}));
    assert_eq!(order["event"], "Order Completed");
    assert_eq!(
        order["properties"],
        json!({"order_id": "o-1", "affiliation": "web", "total": 42.5, "tax": 4, "shipping": 3, "city": "Leeds",
            "country": "UK", "currency": "GBP"})
    );
    let item = mapped(json!({"e": "ti", "ti_id": "o-1", "ti_sk": "sku-9", "ti_nm": "Mug", "ti_ca": "kitchen",
        "ti_pr": "9.99", "ti_qu": "2", "ti_cu": "GBP", "uid": "u"}));
    assert_eq!(item["event"], "Product Purchased");
    assert_eq!(
        item["properties"],
        json!({"order_id": "o-1", "product_id": "sku-9", "sku": "sku-9", "name": "Mug", "category": "kitchen",
            "price": 9.99, "quantity": 2, "currency": "GBP"})
    );
}

#[test]
fn contexts_are_kept_whether_base64_or_not() {
    let entities =
        json!([{"schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0", "data": {"id": "w1"}}]);
    let envelope = json!({"schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1", "data": entities});
    for event in [
        json!({"e": "pv", "duid": "d", "cx": b64(&envelope)}),
        json!({"e": "pv", "duid": "d", "co": envelope.to_string()}),
    ] {
        assert_eq!(mapped(event)["context"]["snowplow"]["contexts"], entities);
    }
}

#[test]
fn a_true_timestamp_stands_and_the_network_id_is_the_last_resort() {
    let event = mapped(json!({"e": "pv", "dtm": "1700000000000", "stm": "1700000009000", "ttm": "1699999999000"}));
    assert_eq!(event["timestamp"], "2023-11-14T22:13:19.000Z");
    assert_eq!(event["originalTimestamp"], "2023-11-14T22:13:20.000Z");
    assert!(event.get("sentAt").is_none(), "no skew correction over a vouched-for time");
    assert_eq!(event["context"]["snowplow"]["sentAt"], "2023-11-14T22:13:29.000Z");
    assert_eq!(event["anonymousId"], "net-1");
    assert_eq!(mapped(json!({"e": "pv", "tnuid": "t-9"}))["anonymousId"], "t-9", "the tracker's own network id wins");
    assert_eq!(mapped(json!({"e": "pv", "aid": "shop-web", "duid": "d"}))["context"]["snowplow"]["appId"], "shop-web");
}

#[test]
fn what_cannot_be_mapped_is_rejected_with_its_reason() {
    assert_eq!(kind_of_rejection(json!("pv")), "not_an_object");
    assert_eq!(kind_of_rejection(json!({"duid": "d"})), "missing_event_type");
    assert_eq!(kind_of_rejection(json!({"e": "zz", "duid": "d"})), "unknown_event_type");
    assert_eq!(kind_of_rejection(json!({"e": "se", "se_ca": "c", "duid": "d"})), "missing_action");
    assert_eq!(kind_of_rejection(json!({"e": "se", "se_ac": "a", "se_va": "lots", "duid": "d"})), "invalid_number");
    assert_eq!(kind_of_rejection(json!({"e": "ue", "duid": "d"})), "missing_self_describing_event");
    assert_eq!(kind_of_rejection(json!({"e": "ue", "ue_px": "%%%", "duid": "d"})), "invalid_self_describing_event");
    assert_eq!(
        kind_of_rejection(json!({"e": "ue", "ue_pr": "{\"data\":1}", "duid": "d"})),
        "invalid_self_describing_event"
    );
    assert_eq!(kind_of_rejection(json!({"e": "pv", "co": "{", "duid": "d"})), "invalid_contexts");
    assert_eq!(kind_of_rejection(json!({"e": "pv", "dtm": "yesterday", "duid": "d"})), "invalid_timestamp");
    assert_eq!(kind_of_rejection(json!({"e": "tr", "duid": "d"})), "missing_order_id");
    assert_eq!(kind_of_rejection(json!({"e": "ti", "duid": "d"})), "missing_sku");
    let nobody = to_segment(3, json!({"e": "pv"}), &RequestFacts { network_user_id: None, ..facts() });
    let (item, payload) = nobody.expect_err("no identity");
    assert_eq!((item.kind, item.index), ("missing_identity", 3));
    assert_eq!(payload, json!({"e": "pv"}), "the event as received goes to the dead-letter topic");
}
