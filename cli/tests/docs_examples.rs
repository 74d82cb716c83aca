//! The docs' runnable examples run: every ```` ```sh runnable ```` block in the repository's
//! Markdown is executed by bash against one `clickstream dev` instance, so the docs cannot rot.
//!
//! The convention, which docs/testing.md explains to writers:
//! - only blocks whose info string is `sh runnable` run, in file order, one bash script each
//!   (`set -euo pipefail`), from the repository root, with `clickstream` on PATH;
//! - `127.0.0.1:8080`/`localhost:8080` become the gateway's address and `:8081` the dev admin
//!   listener's, the ports `dev` uses by default; nothing else is rewritten;
//! - a line `# => TEXT` asserts that the block's stdout contains TEXT, after what the previous
//!   assertion matched.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clickstream_tests::dev::DevProcess;
use clickstream_tests::markdown::{markdown_files, repo_root, split_fences, FencedBlock};

const RUNNABLE: &str = "sh runnable";
/// So few blocks would mean the marker was lost in an edit, not that the docs have no examples.
const AT_LEAST: usize = 5;
const BLOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The `# => TEXT` lines of a block, in order.
fn expectations(body: &str) -> Vec<String> {
    body.lines().filter_map(|l| l.trim_start().strip_prefix("# => ")).map(|t| t.trim_end().to_owned()).collect()
}

/// Where `expected`, in order, is missing from `stdout`; `None` when all are there.
fn first_unmet(stdout: &str, expected: &[String]) -> Option<String> {
    let mut rest = stdout;
    for text in expected {
        match rest.find(text.as_str()) {
            Some(at) => rest = &rest[at + text.len()..],
            None => return Some(text.clone()),
        }
    }
    None
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

fn rewrite(body: &str, dev: &DevProcess) -> String {
    let (gateway, admin) = (host_port(&dev.gateway), host_port(&dev.admin));
    body.replace("127.0.0.1:8080", gateway)
        .replace("localhost:8080", gateway)
        .replace("127.0.0.1:8081", admin)
        .replace("localhost:8081", admin)
}

/// Runs one block; the error says what failed, with the block's output.
fn run_block(script: &str, expected: &[String], root: &Path, bin_dir: &Path) -> Result<(), String> {
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(root)
        .env("PATH", path)
        .env_remove("CLICKSTREAM_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let started = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if started.elapsed() > BLOCK_TIMEOUT {
            let _ = child.kill();
            return Err(format!("still running after {BLOCK_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(format!("exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status));
    }
    match first_unmet(&stdout, expected) {
        Some(text) => Err(format!("stdout lacks `{text}` (in order)\nstdout:\n{stdout}\nstderr:\n{stderr}")),
        None => Ok(()),
    }
}

#[test]
fn runnable_examples_in_the_docs_run_against_dev() {
    let root = repo_root(env!("CARGO_MANIFEST_DIR"));
    let mut runnable: Vec<(String, FencedBlock)> = Vec::new();
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).expect("read markdown");
        let shown = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        let (blocks, _) = split_fences(&text);
        runnable.extend(blocks.into_iter().filter(|b| b.info == RUNNABLE).map(|b| (shown.clone(), b)));
    }
    assert!(
        runnable.len() >= AT_LEAST,
        "only {} `{RUNNABLE}` blocks found; expected at least {AT_LEAST}",
        runnable.len()
    );

    let binary = env!("CARGO_BIN_EXE_clickstream");
    let bin_dir = Path::new(binary).parent().expect("bin dir");
    let dev = DevProcess::start(binary, &["--no-demo"]);
    let mut failures = Vec::new();
    for (file, block) in &runnable {
        let started = Instant::now();
        let result = run_block(&rewrite(&block.body, &dev), &expectations(&block.body), &root, bin_dir);
        let verdict = if result.is_ok() { "ok" } else { "FAILED" };
        println!("{file}:{} {verdict} in {:?}", block.line, started.elapsed());
        if let Err(problem) = result {
            failures.push(format!("{file}:{}:\n{}\n{problem}", block.line, block.body));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runnable examples failed:\n\n{}",
        failures.len(),
        runnable.len(),
        failures.join("\n\n")
    );
}

#[test]
fn expectations_are_matched_in_order() {
    let body = "curl x\n# => {\"success\":true}\n  # => second\n# -> not an assertion\n";
    let expected = expectations(body);
    assert_eq!(expected, ["{\"success\":true}", "second"]);
    assert_eq!(first_unmet("{\"success\":true} then second", &expected), None);
    assert_eq!(first_unmet("second {\"success\":true}", &expected), Some("second".to_owned()));
    let ok = run_block("echo hello", &["hello".to_owned()], Path::new("."), Path::new("/"));
    assert!(ok.is_ok(), "{ok:?}");
    assert!(run_block("false", &[], Path::new("."), Path::new("/")).is_err(), "a failing command fails the block");
}
