//! The scan accepts exactly what simd-json (today's parser, and the owned path's) accepts,
//! and finds the spans serde_json reads: named edge cases, then generated near-JSON.

use proptest::prelude::*;

use super::*;

const ROOTS: [Root; 3] = [Root::Event, Root::Events, Root::Batch];

fn simd_accepts(bytes: &[u8]) -> bool {
    simd_json::to_borrowed_value(&mut bytes.to_vec()).is_ok()
}

/// Asserts the scan and simd-json agree on `bytes` under every root; returns the verdict.
fn agrees(bytes: &[u8]) -> bool {
    let expected = simd_accepts(bytes);
    for root in ROOTS {
        let scanned = document(bytes, root);
        assert_eq!(scanned.is_ok(), expected, "{root:?} {:?}: {scanned:?}", String::from_utf8_lossy(bytes));
    }
    if expected {
        // serde_json accepts all of it too (it alone would take integers past u64).
        assert!(serde_json::from_slice::<serde_json::Value>(bytes).is_ok(), "{}", String::from_utf8_lossy(bytes));
    }
    expected
}

#[test]
fn grammar_edge_cases_match_simd_json() {
    let accepted: &[&[u8]] = &[
        br#"{}"#,
        b" \t\r\n[ ] \n",
        br#""\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00""#,
        "\"é漢字😀\"".as_bytes(),
        b"0",
        b"-0",
        b"-0.0e-0",
        b"1.5E+10",
        b"18446744073709551615",
        b"-9223372036854775808",
        b"123456789012345678901234567890.5",
        b"1e-400",
        b"0e99999999999",
        b"1e0000000000000000000000000001",
        b"[true,false,null]",
        br#"{"a":1,"a":2}"#,
        br#"{"a" : [ 1 , { "b" : "c" } ] }"#,
    ];
    for json in accepted {
        assert!(agrees(json), "should accept {}", String::from_utf8_lossy(json));
    }
    let rejected: &[&[u8]] = &[
        b"",
        b"   ",
        br#""\x""#,
        br#""\u12""#,
        br#""\u12G4""#,
        br#""\uD800""#,
        br#""\uD800\u0041""#,
        br#""\uDC00""#,
        br#""\uD800\uD800""#,
        b"\"a\x01b\"",
        b"\"a\x1fb\"",
        b"\"tab\there\"",
        b"\"unterminated",
        b"\"\xff\"",
        b"\"\xc3\"",
        b"[\"\xed\xa0\x80\"]",
        b"\xef\xbb\xbf{}",
        b"01",
        b"-01",
        b"00",
        b"1.",
        b".5",
        b"-",
        b"+1",
        b"1e",
        b"1e+",
        b"1.e5",
        b"0x10",
        b"NaN",
        b"Infinity",
        b"1e400",
        b"-1e400",
        b"18446744073709551616",
        b"-9223372036854775809",
        b"99999999999999999999999",
        b"[1,]",
        br#"{"a":1,}"#,
        b"[,1]",
        br#"{,"a":1}"#,
        br#"{"a" 1}"#,
        br#"{"a":}"#,
        br#"{a:1}"#,
        br#"{'a':1}"#,
        b"[1 2]",
        b"[1]]",
        b"[[1]",
        b"{}{}",
        b"{} x",
        b"tru",
        b"truex",
        b"nul",
        b"[nulll]",
        b"True",
        b"[1]\x00",
        b"/* c */ {}",
    ];
    for json in rejected {
        assert!(!agrees(json), "should reject {}", String::from_utf8_lossy(json));
    }
}

#[test]
fn nesting_stops_at_simd_json_depth_limit() {
    for depth in [MAX_DEPTH - 3, MAX_DEPTH - 2, MAX_DEPTH, MAX_DEPTH + 1] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        for nested in [deep, objects] {
            let expected = depth <= MAX_DEPTH;
            assert_eq!(simd_accepts(nested.as_bytes()), expected);
            assert_eq!(document(nested.as_bytes(), Root::Event).is_ok(), expected, "{depth}");
            // Inside an event inside a batch: the levels above count too.
            let batch = format!(r#"{{"batch":[{{"properties":{nested}}}]}}"#);
            assert_eq!(simd_accepts(batch.as_bytes()), depth + 3 <= MAX_DEPTH);
            assert_eq!(document(batch.as_bytes(), Root::Batch).is_ok(), depth + 3 <= MAX_DEPTH, "{depth}");
        }
    }
}

#[test]
fn finds_members_with_nesting_escapes_and_whitespace() {
    let json = br#" { "a" : 1.50e3 , "b\"c":"x}\"]" ,"d":{"e":[1,{"f":"]"}]},"g":[ ],"h":null } "#;
    let scanned = document(json, Root::Event).expect("valid");
    let found: Vec<(String, &[u8])> = scanned.members.iter().map(|m| (m.name.clone().into_owned(), m.value)).collect();
    assert_eq!(
        found,
        vec![
            ("a".to_owned(), &b"1.50e3"[..]),
            ("b\"c".to_owned(), &br#""x}\"]""#[..]),
            ("d".to_owned(), &br#"{"e":[1,{"f":"]"}]}"#[..]),
            ("g".to_owned(), &b"[ ]"[..]),
            ("h".to_owned(), &b"null"[..]),
        ]
    );
    assert_eq!(scanned.span, &json[1..json.len() - 1]);
    let last = document(br#"{"a":1,"b":2,"\u0061":3}"#, Root::Event).expect("valid");
    assert_eq!(last.members.iter().map(|m| m.value).collect::<Vec<_>>(), vec![&b"2"[..], &b"3"[..]]);
}

#[test]
fn finds_events_and_their_merged_objects() {
    let scanned = document(br#"[ {"a":[1], "context":{"ip":"x","ip":1}} , "x" ,3]"#, Root::Events).expect("valid");
    let elements = scanned.elements.expect("an array");
    let spans: Vec<&[u8]> = elements.iter().map(|e| e.span).collect();
    assert_eq!(spans, vec![&br#"{"a":[1], "context":{"ip":"x","ip":1}}"#[..], &b"\"x\""[..], &b"3"[..]]);
    assert_eq!(elements[0].members[1].members.iter().map(|m| m.value).collect::<Vec<_>>(), vec![&b"1"[..]]);
    let body = br#"{"sentAt":null, "batch" : [{"x":{"y":"]"}}, {}], "z":1}"#;
    let batch = document(body, Root::Batch).expect("valid");
    assert_eq!(batch.members.iter().map(|m| m.name.as_ref()).collect::<Vec<_>>(), vec!["sentAt", "batch", "z"]);
    let events = batch.elements.expect("events");
    assert_eq!(events.iter().map(|e| e.span).collect::<Vec<_>>(), vec![&br#"{"x":{"y":"]"}}"#[..], b"{}"]);
    // A repeated `batch`: the last copy's events, or none when the last is not an array.
    let twice = document(br#"{"batch":[1],"batch":[2,3]}"#, Root::Batch).expect("valid");
    assert_eq!(twice.elements.expect("events").len(), 2);
    assert!(document(br#"{"batch":[1],"batch":7}"#, Root::Batch).expect("valid").elements.is_none());
}

/// The ingest fuzz target's checked-in seeds (a selector byte, then the body).
#[test]
fn fuzz_seeds_scan_as_simd_json_parses_them() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../gateway/fuzz/corpus/ingest_body");
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
    let mut seeds = 0;
    for entry in entries {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        let Some((_, body)) = data.split_first() else { continue };
        agrees(body);
        for line in body.split(|b| *b == b'\n') {
            agrees(line);
        }
        seeds += 1;
    }
    assert!(seeds >= 4, "only {seeds} seeds in {dir}");
}

fn string_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z ]{0,6}",
        Just("\\\"".to_owned()),
        Just("\\\\".to_owned()),
        Just("\\n\\t\\/".to_owned()),
        Just("\\u00e9".to_owned()),
        Just("\\uD83D\\uDE00".to_owned()),
        Just("é😀".to_owned()),
        Just("}]:,".to_owned()),
    ];
    proptest::collection::vec(piece, 0..4).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        (-999i32..999, 0u32..99999).prop_map(|(i, f)| format!("{i}.{f}")),
        Just("-0".to_owned()),
        Just("1E+2".to_owned()),
    ]
}

fn json_text() -> impl Strategy<Value = String> {
    let ws = prop_oneof![Just(""), Just(" "), Just("\n\t")];
    let leaf = prop_oneof![string_text(), number_text(), Just("true".to_owned()), Just("null".to_owned())];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        let ws = ws.clone();
        prop_oneof![
            (proptest::collection::vec(inner.clone(), 0..5), ws.clone())
                .prop_map(|(items, ws)| format!("[{ws}{}]", items.join(&format!(",{ws}")))),
            (proptest::collection::vec((string_text(), inner), 0..5), ws).prop_map(|(members, ws)| {
                let members: Vec<String> = members.into_iter().map(|(k, v)| format!("{k}{ws}:{v}")).collect();
                format!("{{{ws}{}}}", members.join(","))
            }),
        ]
    })
}

/// Bytes that break JSON in the ways a scanner can get wrong.
const BREAKERS: [&[u8]; 22] = [
    b"\"",
    b"\\",
    b"\\u",
    b"\\uD800",
    b"\\uDC00",
    b",",
    b":",
    b"{",
    b"}",
    b"[",
    b"]",
    b"0",
    b"-",
    b".",
    b"e",
    b"\x01",
    b"\xff",
    b"\xc3",
    b"tru",
    b"1e400",
    b"18446744073709551616",
    b" ",
];

/// `json` with each edit applied: a breaker inserted at an index, replacing a byte or not.
fn broken(json: String, edits: Vec<(prop::sample::Index, usize, bool)>) -> Vec<u8> {
    let mut bytes = json.into_bytes();
    for (at, breaker, replace) in edits {
        let at = at.index(bytes.len() + 1);
        if replace && at < bytes.len() {
            bytes.remove(at);
        }
        bytes.splice(at..at, BREAKERS[breaker].iter().copied());
    }
    bytes
}

fn broken_json() -> impl Strategy<Value = Vec<u8>> {
    let edits = proptest::collection::vec((any::<prop::sample::Index>(), 0..BREAKERS.len(), any::<bool>()), 1..2);
    (json_text(), edits).prop_map(|(json, edits)| broken(json, edits))
}

/// Guards the property below: broken JSON must still be accepted often enough (a breaker
/// inside a string, or a space) for the comparison to test acceptance, not only refusal.
#[test]
fn broken_json_mixes_accepts_and_refusals() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let accepted =
        (0..500).filter(|_| simd_accepts(&broken_json().new_tree(&mut runner).expect("tree").current())).count();
    eprintln!("{accepted} of 500 broken bodies accepted");
    assert!((25..450).contains(&accepted), "{accepted} of 500 accepted");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn valid_json_scans_and_spans_read_as_serde_reads_them(json in json_text()) {
        prop_assert!(agrees(json.as_bytes()));
        let whole: serde_json::Value = serde_json::from_str(&json).expect("generated JSON");
        let scanned = document(json.as_bytes(), Root::Event).expect("valid");
        prop_assert_eq!(scanned.span, json.trim().as_bytes());
        if let serde_json::Value::Object(map) = whole {
            prop_assert_eq!(scanned.members.len(), map.len());
            for member in &scanned.members {
                let value: serde_json::Value = serde_json::from_slice(member.value).expect("a member's span");
                prop_assert_eq!(Some(&value), map.get(member.name.as_ref()));
            }
        }
    }

    #[test]
    fn broken_json_is_refused_where_simd_json_refuses_it(bytes in broken_json()) {
        agrees(&bytes);
    }
}
