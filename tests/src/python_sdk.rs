//! Running another tracker's own Python SDK from a test: the venv `scripts/test` installs it
//! into, a clear failure when it is missing, and the script's run.

use std::path::PathBuf;
use std::process::Command;

/// Where `scripts/test` installs the Python SDKs; `CLICKSTREAM_VENV` names another venv.
fn python() -> PathBuf {
    if let Some(venv) = std::env::var_os("CLICKSTREAM_VENV") {
        return PathBuf::from(venv).join("bin/python");
    }
    PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/clickstream/venv/bin/python")
}

/// Runs `tests/sdk/<script>` with `args`, after checking that `module` imports (named `sdk` in
/// the message), and fails with the script's output unless it succeeds.
pub async fn run_sdk_script(sdk: &str, module: &str, script: &str, args: Vec<String>) {
    let python = python();
    let probe = Command::new(&python).args(["-c", &format!("import {module}")]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{sdk} is not installed in {}: run ./scripts/test, which installs it ({probe:?})",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk").join(script);
    let output = tokio::task::spawn_blocking(move || Command::new(python).arg(script).args(args).output())
        .await
        .expect("join")
        .expect("python runs");
    assert!(
        output.status.success(),
        "{sdk} script failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
