//! The README's config reference is the output of `clickstream config keys --markdown`.

use std::process::Command;

#[test]
fn readme_config_reference_matches_the_code() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_clickstream")).args(["config", "keys", "--markdown"]).output().expect("run");
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).expect("utf8");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README");
    let start =
        readme.find("<!-- config-keys:start -->\n").expect("start marker") + "<!-- config-keys:start -->\n".len();
    let end = readme.find("<!-- config-keys:end -->").expect("end marker");
    assert_eq!(
        readme[start..end].trim_end(),
        generated.trim_end(),
        "README config reference is stale: run ./scripts/gen-config-docs"
    );
}
