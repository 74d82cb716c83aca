//! Every thread's backtrace of this test process, for a test that gives up on a wait that
//! should have ended: a hang then fails with where each thread was, not a silent CI timeout.

use std::process::Command;

/// The backtraces gdb prints for every thread of this process, or why there are none.
pub fn backtraces() -> String {
    let pid = std::process::id().to_string();
    let printed = Command::new("gdb")
        .args(["-p", &pid, "-batch", "-nx", "-ex", "set pagination off", "-ex", "thread apply all bt 40"])
        .output();
    match printed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => format!("gdb failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)),
        Err(error) => format!("no thread backtraces: gdb did not run ({error}); install it with `apt-get install gdb`"),
    }
}
