//! Generators of Segment-shaped requests as JSON text: random extra keys, nested properties
//! and context, numbers in varied formats, unicode and escaped strings, ids present, absent,
//! empty, null or numeric, batch-level `sentAt`, `context` and `integrations`, and a few
//! invalid values of each kind so that rejects are exercised too.

use clickstream_schema::EventType;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Batch,
    Single(EventType),
    Events,
    Ndjson,
}

/// One generated member: its key and value as JSON text.
pub type Member = (String, String);

fn string_lit() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9 _.:/-]{0,8}",
        1 => Just("é".to_owned()),
        1 => Just("日本語".to_owned()),
        1 => Just("😀".to_owned()),
        1 => Just(r"\n".to_owned()),
        1 => Just(r#"\""#.to_owned()),
        1 => Just(r"\\".to_owned()),
        1 => Just(r"\/".to_owned()),
        1 => Just(r"\u00e9".to_owned()),
        1 => Just(r"\ud83d\ude00".to_owned()),
        1 => Just(r"\t".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

fn number_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        (i64::MAX as u64..=u64::MAX).prop_map(|n| n.to_string()),
        (-999i32..999, 0u32..1000).prop_map(|(i, f)| format!("{i}.{f:03}")),
        (-99i32..99, -6i32..6).prop_map(|(m, e)| format!("{m}e{e}")),
        (1u32..99, 0u32..9).prop_map(|(m, e)| format!("{m}.5E-{e}")),
        Just("1.50".to_owned()),
        Just("-0.0".to_owned()),
        Just("1.0".to_owned()),
    ]
}

fn key_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_]{1,7}".prop_map(|k| format!("\"{k}\"")),
        1 => Just(r#""k\u00e9y""#.to_owned()),
        1 => Just(r#""名前""#.to_owned()),
        1 => Just(r#""a b""#.to_owned()),
    ]
}

pub fn decoded(key: &str) -> String {
    serde_json::from_str(key).expect("generated keys are JSON strings")
}

fn object_text(members: &[Member], ws: &str) -> String {
    let inner: Vec<String> = members.iter().map(|(k, v)| format!("{ws}{k}{ws}:{ws}{v}")).collect();
    format!("{{{}{ws}}}", inner.join(","))
}

/// Drops members whose key (unescaped) repeats an earlier one, and any named in `reserved`.
fn unique(members: Vec<Member>, reserved: &[&str]) -> Vec<Member> {
    let mut seen: Vec<String> = reserved.iter().map(|s| (*s).to_owned()).collect();
    members
        .into_iter()
        .filter(|(k, _)| {
            let name = decoded(k);
            let fresh = !seen.contains(&name);
            seen.push(name);
            fresh
        })
        .collect()
}

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number_lit(),
        string_lit(),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|xs| format!("[{}]", xs.join(", "))),
            prop::collection::vec((key_lit(), inner), 0..5).prop_map(|m| object_text(&unique(m, &[]), "")),
        ]
    })
}

fn object_value() -> impl Strategy<Value = String> {
    prop::collection::vec((key_lit(), json_value()), 0..5).prop_map(|m| object_text(&unique(m, &[]), ""))
}

fn timestamp_lit() -> impl Strategy<Value = String> {
    (0u32..60, 0u32..1000).prop_flat_map(|(s, ms)| {
        prop_oneof![
            Just(format!("\"2026-01-01T12:00:{s:02}Z\"")),
            Just(format!("\"2026-01-01T12:00:{s:02}.{ms:03}+02:00\"")),
            Just(format!("\"2025-12-31T23:59:{s:02}.{ms}\"")),
            Just("\"2026-01-01\"".to_owned()),
        ]
    })
}

/// `Some(text)` for a present member, `None` for an absent one.
fn field(options: Vec<(u32, BoxedStrategy<String>)>, absent: u32) -> BoxedStrategy<Option<String>> {
    let mut all: Vec<(u32, BoxedStrategy<Option<String>>)> = vec![(absent, Just(None).boxed())];
    all.extend(options.into_iter().map(|(w, s)| (w, s.prop_map(Some).boxed())));
    proptest::strategy::Union::new_weighted(all).boxed()
}

fn lit(text: &str) -> BoxedStrategy<String> {
    Just(text.to_owned()).boxed()
}

fn id_field(absent: u32) -> BoxedStrategy<Option<String>> {
    let int = any::<u32>().prop_map(|n| n.to_string()).boxed();
    field(vec![(12, string_lit().boxed()), (3, int), (1, lit("\"\"")), (1, lit("null")), (1, lit("1.5"))], absent)
}

fn context_value() -> BoxedStrategy<String> {
    let ip = field(
        vec![
            (3, lit("\"198.51.100.7\"")),
            (1, lit("\"2001:db8:abcd:12::1\"")),
            (1, lit("\"not an ip\"")),
            (1, lit("12")),
            (1, lit("null")),
        ],
        3,
    );
    let agent = field(vec![(2, string_lit().boxed()), (1, lit("null"))], 2);
    let extras = prop::collection::vec((key_lit(), json_value()), 0..4);
    (ip, agent, extras)
        .prop_map(|(ip, agent, extras)| {
            let mut members = unique(extras, &["ip", "userAgent"]);
            members.extend(ip.map(|v| ("\"ip\"".to_owned(), v)));
            members.extend(agent.map(|v| ("\"userAgent\"".to_owned(), v)));
            members
        })
        .prop_shuffle()
        .prop_map(|members| object_text(&members, ""))
        .boxed()
}

const NAMED: [&str; 17] = [
    "type",
    "messageId",
    "anonymousId",
    "userId",
    "event",
    "name",
    "groupId",
    "previousId",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "writeKey",
];

fn event_members() -> impl Strategy<Value = Vec<Member>> {
    let types = prop::sample::select(EventType::ALL.to_vec()).prop_map(|t| format!("\"{}\"", t.as_str()));
    let time = || {
        field(vec![(10, timestamp_lit().boxed()), (3, lit("null")), (1, lit("\"soon\"")), (1, lit("1700000000"))], 15)
    };
    let object = |absent| field(vec![(20, object_value().boxed()), (2, lit("null")), (1, lit("[]"))], absent);
    let named = (
        (
            field(vec![(40, types.boxed()), (2, lit("null")), (1, lit("\"click\"")), (1, lit("7"))], 3),
            field(vec![(10, string_lit().boxed()), (2, lit("\"\"")), (2, lit("null")), (1, lit("42"))], 8),
            id_field(4),
            id_field(6),
            field(vec![(30, string_lit().boxed()), (1, lit("null")), (1, lit("5"))], 2),
            field(vec![(2, string_lit().boxed()), (1, lit("null"))], 4),
            id_field(4),
            id_field(4),
        ),
        (
            object(5),
            object(15),
            field(vec![(20, context_value()), (2, lit("null")), (1, lit("\"ctx\""))], 5),
            field(vec![(10, object_value().boxed()), (2, lit("null"))], 10),
            (time(), time(), time(), time()),
            field(vec![(1, string_lit().boxed())], 3),
        ),
    );
    let extras = prop::collection::vec((key_lit(), json_value()), 0..5);
    // Now and then a key sent twice: serde_json, and so the owned path, keeps the last.
    let repeat = prop::option::weighted(0.1, (any::<prop::sample::Index>(), json_value()));
    (named, extras, repeat)
        .prop_map(|((a, b), extras, repeat)| {
            let (t, m, anon, user, event, name, group, previous) = a;
            let (properties, traits, context, integrations, (ts, ots, sent, recv), key) = b;
            let values = [
                t,
                m,
                anon,
                user,
                event,
                name,
                group,
                previous,
                properties,
                traits,
                context,
                integrations,
                ts,
                ots,
                sent,
                recv,
                key,
            ];
            let mut members: Vec<Member> = unique(extras, &NAMED);
            for (field, value) in NAMED.iter().zip(values) {
                members.extend(value.map(|v| (format!("\"{field}\""), v)));
            }
            (members, repeat)
        })
        .prop_flat_map(|(members, repeat)| {
            Just(members).prop_shuffle().prop_map(move |mut members| {
                if let (Some((index, value)), false) = (&repeat, members.is_empty()) {
                    let key = members[index.index(members.len())].0.clone();
                    members.push((key, value.clone()));
                }
                members
            })
        })
}

#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub body: String,
    /// Each event's members as generated, for the verbatim check.
    pub events: Vec<Vec<Member>>,
    pub anonymize_ip: bool,
    pub user_agent: Option<String>,
}

pub fn request() -> impl Strategy<Value = Request> {
    let kinds = prop_oneof![
        3 => Just(Kind::Batch),
        2 => prop::sample::select(EventType::ALL.to_vec()).prop_map(Kind::Single),
        1 => Just(Kind::Events),
        1 => Just(Kind::Ndjson),
    ];
    let batch_fields = (
        field(vec![(3, timestamp_lit().boxed()), (1, lit("null")), (1, lit("\"later\""))], 3),
        field(vec![(3, context_value()), (1, lit("null"))], 2),
        field(vec![(2, object_value().boxed())], 2),
        field(vec![(2, string_lit().boxed())], 2),
    );
    let agent = prop::option::of(prop_oneof![Just("Mozilla/5.0 (X11)".to_owned()), Just("a \"quoted\" é".to_owned())]);
    let whitespace = prop_oneof![Just(""), Just(" "), Just("\n  ")];
    let mismatch = prop::bool::weighted(0.15);
    let shape = (any::<bool>(), agent, whitespace, mismatch);
    (kinds, prop::collection::vec(event_members(), 1..4), batch_fields, shape).prop_map(
        |(kind, events, (sent_at, context, integrations, write_key), (anonymize_ip, user_agent, ws, mismatch))| {
            let ws = if matches!(kind, Kind::Ndjson) { " " } else { ws };
            let mut events = events;
            if let (Kind::Single(endpoint), false) = (kind, mismatch) {
                let matching = format!("\"{}\"", endpoint.as_str());
                for (key, value) in &mut events[0] {
                    if key == "\"type\"" && EventType::ALL.iter().any(|t| *value == format!("\"{}\"", t.as_str())) {
                        value.clone_from(&matching);
                    }
                }
            }
            let mut texts: Vec<String> = events.iter().map(|m| object_text(m, ws)).collect();
            if mismatch {
                // A batch item that is no event at all (single bodies are handled by shape).
                texts.push("7".to_owned());
            }
            let (body, events) = match kind {
                Kind::Single(_) => (texts[0].clone(), vec![events[0].clone()]),
                Kind::Events => (format!("[{}]", texts.join(",\n")), events),
                Kind::Ndjson => (texts.join("\n\n"), events),
                Kind::Batch => {
                    let mut batch = vec![("\"batch\"".to_owned(), format!("[{}]", texts.join(", ")))];
                    let fields = [("sentAt", sent_at), ("context", context), ("integrations", integrations)];
                    let mut fields = fields.into_iter().chain([("writeKey", write_key)]);
                    batch.extend(fields.by_ref().filter_map(|(k, v)| Some((format!("\"{k}\""), v?))));
                    (object_text(&batch, ws), events)
                }
            };
            Request { kind, body, events, anonymize_ip, user_agent }
        },
    )
}
