//! Named cases: what a stored event reads compared with the owned [`Event`], repeated keys,
//! appends compared with [`crate::append_member`], errors compared with the owned path's.

use super::*;

fn read<T>(bytes: &[u8], f: impl FnOnce(&StoredEvent<'_>) -> T) -> Result<T, EventError> {
    StoredEvent::parse(bytes).map(|event| f(&event))
}

/// The string at `path`, object by object from the top level.
fn text_at(event: &StoredEvent<'_>, path: &[&str]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let mut value = event.get(first)?;
    for name in rest {
        value = value.get(name)?;
    }
    value.as_str().map(Cow::into_owned)
}

#[test]
fn reads_what_the_owned_event_reads() {
    let stored = br#"{"type":"track","event":"E","messageId":42,"anonymousId":"","userId":"u1","timestamp":"2026-01-01T00:00:00Z","receivedAt":"2026-01-01T00:00:01Z","context":{"ip":"1.2.3.4"}}"#;
    let owned = Event::from_slice(stored).expect("valid");
    let got = read(stored, |e| {
        (e.kind(), e.message_id().map(Cow::into_owned), e.visitor_key().map(Cow::into_owned), e.timestamp())
    });
    assert_eq!(
        got,
        Ok((owned.kind, owned.message_id.clone(), owned.visitor_key().map(str::to_owned), owned.timestamp))
    );
    assert_eq!(read(stored, |e| e.received_at()), Ok(owned.received_at));
    assert_eq!(read(stored, |e| e.str("event").map(Cow::into_owned)), Ok(Some("E".to_owned())));
    assert_eq!(read(stored, |e| text_at(e, &["context", "ip"])), Ok(Some("1.2.3.4".to_owned())));
    let negative_zero = br#"{"type":"page","userId":-0,"messageId":-0}"#;
    let owned = Event::from_slice(negative_zero).expect("valid");
    let got = read(negative_zero, |e| (e.message_id().map(Cow::into_owned), e.visitor_key().map(Cow::into_owned)));
    assert_eq!(got, Ok((owned.message_id.clone(), owned.visitor_key().map(str::to_owned))));
}

#[test]
fn escaped_strings_read_unescaped() {
    let stored = br#"{"type":"track","event":"caf\u00e9 \"x\"","userId":"u\/1","properties":{"k\u0065y":"v"}}"#;
    assert_eq!(read(stored, |e| e.str("event").map(Cow::into_owned)), Ok(Some("café \"x\"".to_owned())));
    assert_eq!(read(stored, |e| e.visitor_key().map(Cow::into_owned)), Ok(Some("u/1".to_owned())));
    assert_eq!(read(stored, |e| text_at(e, &["properties", "key"])), Ok(Some("v".to_owned())));
}

/// Every object reads the last copy of a repeated key, at any depth and in array items.
#[test]
fn a_repeated_key_reads_its_last_copy_as_serde_does() {
    let stored = br#"{"type":"track","event":"A","userId":"u","properties":{"id":"x","id":"y"},"event":"B"}"#;
    assert_eq!(read(stored, |e| e.str("event").map(Cow::into_owned)), Ok(Some("B".to_owned())));
    assert_eq!(read(stored, |e| text_at(e, &["properties", "id"])), Ok(Some("y".to_owned())));
    let nested: [(&[u8], &[&str]); 5] = [
        (br#"{"type":"page","userId":"u","context":{"page":{"url":"a","url":"b"}}}"#, &["context", "page", "url"]),
        (
            br#"{"type":"page","userId":"u","context":{"campaign":{"name":"a","name":"b"}}}"#,
            &["context", "campaign", "name"],
        ),
        (br#"{"type":"page","userId":"u","context":{"ip":"a","ip":"b"}}"#, &["context", "ip"]),
        (br#"{"type":"page","userId":"u","context":{"ip":"a"},"context":{"ip":"b"}}"#, &["context", "ip"]),
        (
            br#"{"type":"track","event":"E","userId":"u","properties":{"m":{"k":"a","k":"b"}}}"#,
            &["properties", "m", "k"],
        ),
    ];
    for (stored, path) in nested {
        assert_eq!(read(stored, |e| text_at(e, path)), Ok(Some("b".to_owned())), "{path:?}");
    }
    let item = br#"{"type":"track","event":"E","userId":"u","properties":{"products":[1,{"product_id":"a","product_id":"b"}]}}"#;
    let product = read(item, |e| {
        let products = e.object("properties")?.get("products")?;
        let ids: Vec<_> = products.items()?.map(|item| item.get("product_id")?.id_text()).collect();
        Some(ids.into_iter().map(|id| id.map(Cow::into_owned)).collect::<Vec<_>>())
    });
    assert_eq!(product, Ok(Some(vec![None, Some("b".to_owned())])));
}

/// Numbers read as the owned path reads them: an integer converted, a float parsed, ids as
/// serde_json writes them.
#[test]
fn numbers_read_as_integers_or_floats() {
    let stored = br#"{"type":"track","event":"E","userId":"u","properties":{"a":3,"b":-0,"c":1.50,"d":1e2,"e":18446744073709551615,"f":-2.5E-3,"g":"7","h":""}}"#;
    let read_all = |e: &StoredEvent<'_>| {
        let properties = e.object("properties").expect("properties");
        ["a", "b", "c", "d", "e", "f", "g", "h"]
            .map(|name| properties.get(name).map(|v| (v.as_f64(), v.id_text().map(Cow::into_owned))))
    };
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        read(stored, read_all),
        Ok([
            Some((Some(3.0), text("3"))),
            Some((Some(0.0), text("0"))),
            Some((Some(1.5), text("1.5"))),
            Some((Some(100.0), text("100.0"))),
            Some((Some(18_446_744_073_709_551_615.0), text("18446744073709551615"))),
            Some((Some(-0.0025), text("-0.0025"))),
            Some((None, text("7"))),
            Some((None, None)),
        ])
    );
}

/// The same event as [`crate::append_member`] writes, with or without an IP to replace,
/// escaped or not, and with a repeated key.
#[test]
fn appends_as_the_byte_scan_does() {
    let cases: [&[u8]; 7] = [
        br#"{"type":"track","event":"E","userId":"u","context":{"ip":"203.0.113.7","locale":"en"},"n":1.50}"#,
        br#"{"type":"track","event":"E","userId":"u","context":{"locale":"en"}}"#,
        br#"{"type":"track","event":"E","userId":"u","context":{"ip":"203.0.113.\u0037"}}"#,
        br#"{"type":"track","event":"E","userId":"u","context":{"ip":"1.1.1.1","ip":"2.2.2.2"}}"#,
        br#"{"type":"track","event":"E","userId":"u","context":{"ip":"1.1.1.1"},"context":{"ip":"2.2.2.2"}}"#,
        br#"{"type":"page","userId":"u","ip":"9.9.9.9","context":{"ip":7}}"#,
        br#"{"type":"page","userId":"u","context":{"page":{"ip":"1.1.1.1"}},"properties":{"x":1,"x":2}}"#,
    ];
    for stored in cases {
        for ip in [None, Some("203.0.113.0")] {
            let appended = read(stored, |e| e.append_member("enrichment", br#"{"a":1}"#, ip));
            let scanned = crate::append_member(stored, "enrichment", br#"{"a":1}"#, ip);
            assert_eq!(appended, Ok(scanned), "{}", String::from_utf8_lossy(stored));
        }
    }
    let padded = b" {\"type\":\"page\", \"userId\":\"u\",\"context\": {\"ip\" : \"1.1.1.1\" }} \n";
    let appended = read(padded, |e| e.append_member("x", b"1", Some("0.0.0.0"))).expect("valid").expect("appended");
    assert_eq!(appended, b"{\"type\":\"page\", \"userId\":\"u\",\"context\": {\"ip\" : \"0.0.0.0\" },\"x\":1}");
    let twice = br#"{"type":"page","userId":"u","x":0}"#;
    assert_eq!(read(twice, |e| e.append_member("x", b"1", None)), Ok(None));
}

#[test]
fn rejects_with_the_owned_error() {
    let bad: [&[u8]; 7] = [
        b"{not json",
        b"[1]",
        b"\"text\"",
        br#"{"type":"track","userId":"u"}"#,
        br#"{"type":"page"}"#,
        br#"{"type":"page","userId":"u","context":[]}"#,
        b"{\"type\":\"page\",\"userId\":\"u\"} x",
    ];
    for bad in bad {
        assert_eq!(read(bad, |_| ()), Err(Event::from_slice(bad).expect_err("invalid")), "{bad:?}");
    }
}

#[test]
fn json_ref_parses_any_value() {
    let value = JsonRef::parse(" [1, \"a\", {\"k\":null}] ").expect("valid");
    assert_eq!(value.json(), "[1, \"a\", {\"k\":null}]");
    let items: Vec<_> = value.items().expect("array").map(|item| item.json()).collect();
    assert_eq!(items, ["1", "\"a\"", "{\"k\":null}"]);
    assert!(JsonRef::parse("[]").and_then(|v| v.items()).is_some_and(|mut items| items.next().is_none()));
    assert!(JsonRef::parse("{\"a\":1,}").is_none());
    let object = JsonRef::parse("{\"k\":null, \"k\\u0065\" : 1,\"ke\":2}").expect("object");
    assert!(object.get("k").is_some_and(|v| v.is_null()));
    assert_eq!(object.get("ke").map(|v| v.json()), Some("2"), "the last copy, the first escaped");
    assert!(object.get("missing").is_none());
    assert!(JsonRef::parse("[{\"k\":1}]").and_then(|v| v.get("k")).is_none(), "not an object");
}

/// Below the depth the scan records, values are found by walking them; far deeper than any
/// event, the parse still recurses no deeper than that.
#[test]
fn reads_below_the_recorded_depth() {
    let depth = 500;
    let nested = format!("{}\"v\"{}", "{\"k\":[".repeat(depth), "]}".repeat(depth));
    let stored = format!(r#"{{"type":"page","userId":"u","properties":{nested}}}"#);
    let found = read(stored.as_bytes(), |e| {
        let mut value = e.get("properties")?;
        for _ in 0..depth {
            value = value.get("k")?.items()?.next()?;
        }
        value.as_str().map(Cow::into_owned)
    });
    assert_eq!(found, Ok(Some("v".to_owned())));
    let empty = br#"{"type":"page","userId":"u","properties":{"a":{ },"b":[ ]}}"#;
    let read_empty = |e: &StoredEvent<'_>| {
        let properties = e.get("properties").expect("properties");
        (
            properties.get("a").map(|a| a.get("x").is_none()),
            properties.get("b").and_then(|b| b.items()).map(|mut i| i.next().is_none()),
        )
    };
    assert_eq!(read(empty, read_empty), Ok((Some(true), Some(true))));
}

/// Past the pairwise limit, a repeated key is found through a hash set: the whole event is
/// written, and no earlier copy of `context.ip` stays unmasked.
#[test]
fn a_repeat_among_many_keys_is_found() {
    let many = (0..100).map(|i| format!(r#""k{i}":{i}"#)).collect::<Vec<_>>().join(",");
    for (top, context) in [
        (format!("{many},"), format!(r#""ip":"1.1.1.1",{many},"ip":"2.2.2.2""#)),
        (format!("{many},\"k5\":0,"), format!(r#""ip":"1.1.1.1",{many}"#)),
    ] {
        let stored = format!(r#"{{"type":"page","userId":"u",{top}"context":{{{context}}}}}"#);
        let appended = read(stored.as_bytes(), |e| e.append_member("enrichment", b"{}", Some("203.0.113.0")));
        let scanned = crate::append_member(stored.as_bytes(), "enrichment", b"{}", Some("203.0.113.0"));
        assert_eq!(appended, Ok(scanned.clone()));
        let value: serde_json::Value = serde_json::from_slice(&scanned.expect("appended")).expect("json");
        assert_eq!(value["context"]["ip"], "203.0.113.0");
        assert!(!String::from_utf8_lossy(&serde_json::to_vec(&value).expect("json")).contains("1.1.1.1"));
    }
}
