//! Every thread's backtrace of this test process, for a test that gives up on a wait that
//! should have ended: a hang then fails with where each thread was, not a silent CI timeout.

use std::io::{Read as _, Seek as _};
use std::process::Command;

/// The backtraces gdb prints for every thread of this process, or why there are none.
pub fn backtraces() -> String {
    let pid = std::process::id().to_string();
    // gdb's output goes to a file, not a pipe: gdb stops every thread of this process, the one
    // reading a pipe too, so past a pipe's 64 KiB of backtraces gdb blocked writing and the
    // test hung instead of failing (2026-12-07).
    let (Ok(mut out), Ok(mut err)) = (tempfile::tempfile(), tempfile::tempfile()) else {
        return "no thread backtraces: no temporary file for gdb's output".to_owned();
    };
    let (Ok(stdout), Ok(stderr)) = (out.try_clone(), err.try_clone()) else {
        return "no thread backtraces: no handle on the temporary file".to_owned();
    };
    let status = Command::new("gdb")
        .args(["-p", &pid, "-batch", "-nx", "-ex", "set pagination off", "-ex", "thread apply all bt 40"])
        .stdout(stdout)
        .stderr(stderr)
        .status();
    let text = |file: &mut std::fs::File| {
        let mut text = String::new();
        let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
        text
    };
    match status {
        Ok(status) if status.success() => text(&mut out),
        Ok(status) => format!("gdb failed ({status}): {}", text(&mut err)),
        Err(error) => format!("no thread backtraces: gdb did not run ({error}); install it with `apt-get install gdb`"),
    }
}

#[cfg(test)]
mod tests {
    /// More than a pipe's worth of backtraces (64 KiB): gdb used to block writing them, with
    /// this process stopped and unable to read, so the call never returned.
    #[test]
    fn backtraces_of_many_threads_come_back() {
        let (stop, parked) = std::sync::mpsc::channel::<()>();
        let parked = std::sync::Arc::new(std::sync::Mutex::new(parked));
        let threads: Vec<_> = (0..150)
            .map(|_| {
                let parked = parked.clone();
                std::thread::spawn(move || {
                    let _ = parked.lock().map(|p| p.recv());
                })
            })
            .collect();
        let printed = super::backtraces();
        assert!(printed.len() > 64 * 1024, "{} bytes: {}", printed.len(), &printed[..printed.len().min(2_000)]);
        assert!(printed.contains("Thread 150"), "every thread is listed");
        drop(stop);
        threads.into_iter().for_each(|t| t.join().expect("thread"));
    }
}
