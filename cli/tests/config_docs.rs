//! The config reference in docs/configuration.md is the output of `clickstream config keys --markdown`.

use std::process::Command;

#[test]
fn docs_configuration_reference_matches_the_code() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_clickstream")).args(["config", "keys", "--markdown"]).output().expect("run");
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).expect("utf8");
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md"))
        .expect("docs/configuration.md");
    let start = docs.find("<!-- config-keys:start -->\n").expect("start marker") + "<!-- config-keys:start -->\n".len();
    let end = docs.find("<!-- config-keys:end -->").expect("end marker");
    assert_eq!(
        docs[start..end].trim_end(),
        generated.trim_end(),
        "docs/configuration.md config reference is stale: run ./scripts/gen-config-docs"
    );
}
