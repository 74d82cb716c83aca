//! Generated events read through the borrowed view and through serde_json's `Value` of the same
//! bytes must agree on every read: strings (keys and values escaped or not), numbers, nested
//! objects with repeated keys (the last copy counts), arrays. Numbers of every form are also
//! read as the enricher read them before, from simd-json's values.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// A JSON value to write, with repeated keys and the choice of escapes kept.
#[derive(Debug, Clone)]
enum Node {
    Null,
    Bool(bool),
    Number(String),
    Text(Text),
    Array(Vec<Node>),
    Object(Vec<(Text, Node)>),
}

/// A string and whether to write it with every escape JSON allows for it.
#[derive(Debug, Clone)]
struct Text(String, bool);

fn write_text(out: &mut String, Text(text, escape_all): &Text) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '/' if *escape_all => out.push_str("\\/"),
            c if (c as u32) < 0x20 || (*escape_all && !c.is_ascii_alphanumeric()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(out: &mut String, node: &Node) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(text) => out.push_str(text),
        Node::Text(text) => write_text(out, text),
        Node::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                out.push_str(if index > 0 { ", " } else { "" });
                write(out, item);
            }
            out.push(']');
        }
        Node::Object(members) => {
            out.push('{');
            for (index, (key, value)) in members.iter().enumerate() {
                out.push_str(if index > 0 { "," } else { "" });
                write_text(out, key);
                out.push_str(if index % 2 == 0 { ":" } else { " : " });
                write(out, value);
            }
            out.push('}');
        }
    }
}

fn text(pool: &'static [&'static str]) -> impl Strategy<Value = Text> {
    (prop::sample::select(pool), any::<bool>()).prop_map(|(text, escape)| Text(text.to_owned(), escape))
}

/// Keys few enough to repeat often, some needing escapes.
const KEYS: &[&str] = &["a", "b", "product_id", "k\"q", "é", "😀", "a/b", ""];
const STRINGS: &[&str] = &["", "x", "p1", "caf\u{e9}", "tab\there", "q\"uote\\", "😀 ok", "a/b", "\u{1}"];

/// Numbers in forms serde_json reads exactly (significands under 2^53, exponents within
/// 10^±22), so that its reading is the correct one to compare with.
fn exact_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-99_999i64..99_999, 0u32..1_000_000, prop::sample::select(&["", "e", "E", "e+", "e-", "E-"][..]), 0u32..10)
            .prop_map(|(int, frac, e, exp)| match e {
                "" => format!("{int}.{frac}"),
                _ => format!("{int}.{frac}{e}{exp}"),
            }),
        (-9_999i64..9_999, prop::sample::select(&["e", "E+", "e-"][..]), 0u32..12)
            .prop_map(|(int, e, exp)| format!("{int}{e}{exp}")),
        Just("-0.0".to_owned()),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        Just(Node::Null),
        any::<bool>().prop_map(Node::Bool),
        exact_number().prop_map(Node::Number),
        text(STRINGS).prop_map(Node::Text),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Node::Array),
            prop::collection::vec((text(KEYS), inner), 0..7).prop_map(Node::Object),
        ]
    })
}

fn object() -> impl Strategy<Value = Node> {
    prop::collection::vec((text(KEYS), node()), 0..7).prop_map(Node::Object)
}

/// An event: the fields validation needs, then members whose keys repeat, `context` and
/// `properties` among them.
fn event() -> impl Strategy<Value = String> {
    let member = prop_oneof![(text(&["properties", "context"]), object()), (text(&["a", "é", "k\"q"]), node()),];
    prop::collection::vec(member, 0..6).prop_map(|members| {
        let mut out = String::from(r#"{"type":"track","event":"E","userId":"u""#);
        for (key, value) in &members {
            out.push(',');
            write_text(&mut out, key);
            out.push(':');
            write(&mut out, value);
        }
        out.push('}');
        out
    })
}

/// serde_json's reading of an id, as the enricher keys products.
fn serde_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Every read of `view` equals serde_json's of `value`, recursively.
fn assert_reads(view: JsonRef<'_>, value: &Value, path: &str) {
    assert_eq!(view.as_str().as_deref(), value.as_str(), "str at {path}");
    assert_eq!(view.as_f64().map(f64::to_bits), value.as_f64().map(f64::to_bits), "f64 at {path}");
    assert_eq!(view.id_text().map(Cow::into_owned), serde_id_text(value), "id at {path}");
    assert_eq!(view.is_null(), value.is_null(), "null at {path}");
    match value {
        Value::Object(map) => assert_object(view, map, path),
        Value::Array(items) => {
            let viewed: Vec<_> = view.items().unwrap_or_else(|| panic!("no array at {path}")).collect();
            assert_eq!(viewed.len(), items.len(), "items at {path}");
            for (index, (view, value)) in viewed.into_iter().zip(items).enumerate() {
                assert_reads(view, value, &format!("{path}[{index}]"));
            }
        }
        _ => assert!(view.get(KEYS[0]).is_none() && view.items().is_none(), "container at {path}"),
    }
}

fn assert_object(object: JsonRef<'_>, map: &serde_json::Map<String, Value>, path: &str) {
    assert!(object.is_object(), "object at {path}");
    for (key, value) in map {
        let member = object.get(key).unwrap_or_else(|| panic!("no {key:?} at {path}"));
        assert_reads(member, value, &format!("{path}.{key}"));
    }
    assert!(object.get("absent").is_none(), "absent at {path}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn the_view_reads_what_serde_json_reads(stored in event()) {
        let value: Value = serde_json::from_str(&stored).expect("serde_json reads it");
        let event = StoredEvent::parse(stored.as_bytes()).expect("a valid event");
        let Value::Object(map) = &value else { panic!("not an object") };
        for (key, value) in map {
            assert_reads(event.get(key).expect("member"), value, key);
        }
        // `object` is `get` for objects.
        if let Some(Value::Object(context)) = map.get("context") {
            assert_object(event.object("context").expect("context"), context, "context");
        }
        assert_reads(JsonRef::parse(&stored).expect("valid"), &value, "$");
    }

    /// Numbers of every form (long significands, large exponents, `-0`) read as simd-json's
    /// values read them: what the enricher read before this view.
    #[test]
    fn numbers_read_as_simd_json_read_them(
        sign in prop::sample::select(&["", "-"][..]),
        int in "0|[1-9][0-9]{0,24}",
        frac in prop::option::of("[0-9]{1,20}"),
        exp in prop::option::of(("[eE][+-]?", 0u32..330)),
    ) {
        let mut text = format!("{sign}{int}");
        if let Some(frac) = frac {
            text.push_str(&format!(".{frac}"));
        }
        if let Some((e, exp)) = exp {
            text.push_str(&format!("{e}{exp}"));
        }
        let view = JsonRef::parse(&text).map(|view| (view.as_f64().map(f64::to_bits), view.id_text().map(Cow::into_owned)));
        prop_assert_eq!(view, simd_reads(&text), "{}", text);
    }
}

/// A number's `f64` bits and id text as the enricher read them before this view; `None` when
/// simd-json refuses the text.
fn simd_reads(text: &str) -> Option<(Option<u64>, Option<String>)> {
    let mut scratch = text.as_bytes().to_vec();
    let value = simd_json::to_borrowed_value(&mut scratch).ok()?;
    Some((simd_f64(&value).map(f64::to_bits), simd_id_text(&value)))
}

/// The enricher's reading of a number before this view, from simd-json's value.
fn simd_f64(value: &simd_json::BorrowedValue<'_>) -> Option<f64> {
    use simd_json::StaticNode;
    match value {
        simd_json::BorrowedValue::Static(StaticNode::F64(n)) => Some(*n),
        simd_json::BorrowedValue::Static(StaticNode::I64(n)) => Some(*n as f64),
        simd_json::BorrowedValue::Static(StaticNode::U64(n)) => Some(*n as f64),
        _ => None,
    }
}

/// The enricher's product id text before this view, from simd-json's value.
fn simd_id_text(value: &simd_json::BorrowedValue<'_>) -> Option<String> {
    use simd_json::StaticNode;
    match value {
        simd_json::BorrowedValue::String(text) if !text.is_empty() => Some(text.to_string()),
        simd_json::BorrowedValue::Static(StaticNode::I64(n)) => Some(n.to_string()),
        simd_json::BorrowedValue::Static(StaticNode::U64(n)) => Some(n.to_string()),
        simd_json::BorrowedValue::Static(StaticNode::F64(n)) => serde_json::Number::from_f64(*n).map(|n| n.to_string()),
        _ => None,
    }
}
