//! Running a CLI command to its end with text on its stdin, for tests of commands that read
//! events from stdin (`routing check`, `plan check`).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Runs `command` with `stdin` as its input, and returns its output with stdout and stderr
/// joined into one text.
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> (Output, String) {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the command runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("the command ends");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output, text)
}
