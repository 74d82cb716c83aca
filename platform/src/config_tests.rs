//! Layering order, type-guided env parsing and the key listing.

use super::*;
use serde::Deserialize;

/// Sample config.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(default)]
struct Sample {
    /// The HTTP section.
    http: Http,
    /// A top-level scalar.
    extra_file: String,
}

/// HTTP settings.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
struct Http {
    /// Port to listen on.
    port: u16,
    /// A key that looks numeric.
    key: String,
    /// Allowed origins.
    origins: Vec<String>,
    /// Passthrough properties.
    properties: std::collections::BTreeMap<String, String>,
}

impl Default for Sample {
    fn default() -> Self {
        Self {
            http: Http { port: 8080, key: "k".into(), origins: vec!["*".into()], properties: Default::default() },
            extra_file: String::new(),
        }
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn later_layers_win() {
    let dir = tempdir();
    let file = dir.join("c.toml");
    std::fs::write(&file, "[http]\nport = 9000\nkey = \"from-file\"\n").expect("write");
    let loaded: Sample = load(
        Some(&file),
        env(&[("CLICKSTREAM_HTTP__PORT", "9100"), ("OTHER", "x")]),
        &["http.key=123".to_owned(), "http.properties.security.protocol=SASL_SSL".to_owned()],
    )
    .expect("loads");
    assert_eq!(loaded.http.port, 9100);
    assert_eq!(loaded.http.key, "123", "numeric-looking text stays a string");
    assert_eq!(loaded.http.properties["security.protocol"], "SASL_SSL", "map keys keep their dots");
}

#[test]
fn lists_parse_from_commas() {
    let loaded: Sample =
        load(None, env(&[("CLICKSTREAM_HTTP__ORIGINS", "https://a.example, https://b.example")]), &[]).expect("loads");
    assert_eq!(loaded.http.origins, vec!["https://a.example", "https://b.example"]);
}

#[test]
fn unknown_and_mistyped_keys_are_errors() {
    let err = load::<Sample>(None, env(&[("CLICKSTREAM_HTTP__PROT", "1")]), &[]).expect_err("typo");
    assert!(err.to_string().contains("prot"), "{err}");
    let err = load::<Sample>(None, env(&[("CLICKSTREAM_HTTP__PORT", "eighty")]), &[]).expect_err("type");
    assert!(err.to_string().contains("invalid"), "{err}");
}

#[test]
fn keys_carry_env_default_and_doc() {
    let listed = keys::<Sample>();
    let port = listed.iter().find(|k| k.key == "http.port").expect("http.port listed");
    assert_eq!(port.env, "CLICKSTREAM_HTTP__PORT");
    assert_eq!(port.default, "8080");
    assert_eq!(port.doc, "Port to listen on.");
    assert_eq!(listed.len(), 5);
    let top = listed.iter().find(|k| k.key == "extra_file").expect("top-level key listed");
    assert_eq!(top.env, "CLICKSTREAM_EXTRA_FILE", "a top-level scalar has an env name");
    let properties = listed.iter().find(|k| k.key == "http.properties").expect("map listed");
    assert!(properties.env.contains("--set http.properties.KEY=VALUE"), "{properties:?}");
}

#[test]
fn file_values_expand_environment_references() {
    let file = tempdir().join("references.toml");
    std::fs::write(
        &file,
        "[http]\nkey = \"user:${SECRET}@${HOST}\"\norigins = [\"${HOST}\", \"$${LITERAL}\", \"cost $5\"]\n\
         [http.properties]\n\"sasl.password\" = \"${SECRET}\"\n",
    )
    .expect("write");
    let vars = env(&[("SECRET", "s3cr3t"), ("HOST", "example.com"), ("CLICKSTREAM_HTTP__PROPERTIES__X", "${SECRET}")]);
    let loaded: Sample = load(Some(&file), vars, &["http.properties.y=${SECRET}".to_owned()]).expect("loads");
    assert_eq!(loaded.http.key, "user:s3cr3t@example.com");
    assert_eq!(loaded.http.origins, vec!["example.com", "${LITERAL}", "cost $5"]);
    assert_eq!(loaded.http.properties["sasl.password"], "s3cr3t");
    assert_eq!(loaded.http.properties["y"], "${SECRET}", "flags are taken literally, not expanded");
}

#[test]
fn a_missing_or_unterminated_reference_names_the_key() {
    let file = tempdir().join("missing.toml");
    std::fs::write(&file, "[http.properties]\n\"sasl.password\" = \"${NOT_SET_ANYWHERE}\"\n").expect("write");
    let err = load::<Sample>(Some(&file), env(&[]), &[]).expect_err("missing variable");
    let text = err.to_string();
    assert!(text.contains("http.properties.sasl.password") && text.contains("NOT_SET_ANYWHERE"), "{text}");
    std::fs::write(&file, "[http]\nkey = \"${OPEN\"\n").expect("write");
    let err = load::<Sample>(Some(&file), env(&[("OPEN", "x")]), &[]).expect_err("unterminated");
    assert!(err.to_string().contains("http.key") && err.to_string().contains("unterminated"), "{err}");
}

#[test]
fn a_top_level_scalar_reads_a_one_part_env_name() {
    let vars = env(&[("CLICKSTREAM_EXTRA_FILE", "/run/secrets/x.toml"), ("CLICKSTREAM_HTTP", "ignored")]);
    let loaded: Sample = load(None, vars, &[]).expect("a one-part name that is a section is ignored");
    assert_eq!(loaded.extra_file, "/run/secrets/x.toml");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("clickstream-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}
