//! CPU accounting from /proc: how much of a core the load generator and the server used in a
//! phase, which tells a saturated server from a saturated load generator.

/// Linux reports process times in USER_HZ ticks, fixed at 100 by the kernel ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU seconds used so far by every thread of process `pid`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// The CPUs this process may run on, as `taskset` writes them (`0`, `0-1`, `0,2`).
pub fn own_cpu_list() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| line.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// How many CPUs a list such as `0-1,3` names; `None` when it cannot be read.
pub fn count_cpus(list: &str) -> Option<usize> {
    let mut count = 0;
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        count += match part.split_once('-') {
            Some((from, to)) => to.parse::<usize>().ok()?.checked_sub(from.parse::<usize>().ok()?)? + 1,
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    (count > 0).then_some(count)
}

/// CPU time of the load generator and of the server at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    pub loadgen_s: Option<f64>,
    pub server_s: Option<f64>,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> Self {
        Self { loadgen_s: process_cpu_seconds(std::process::id()), server_s: server_pid.and_then(process_cpu_seconds) }
    }

    /// Cores used between `self` and `later`, over `wall_s` seconds.
    pub fn cores_until(&self, later: &Self, wall_s: f64) -> (Option<f64>, Option<f64>) {
        let rate = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if wall_s > 0.0 => Some(((b - a) / wall_s * 100.0).round() / 100.0),
            _ => None,
        };
        (rate(self.loadgen_s, later.loadgen_s), rate(self.server_s, later.server_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpus("1"), Some(1));
        assert_eq!(count_cpus("0-1"), Some(2));
        assert_eq!(count_cpus("0,2-4"), Some(4));
        assert_eq!(count_cpus("x"), None);
        assert_eq!(count_cpus(""), None);
    }

    #[test]
    fn own_process_time_grows_with_work() {
        let before = process_cpu_seconds(std::process::id()).expect("/proc is readable");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(150) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = process_cpu_seconds(std::process::id()).expect("/proc is readable");
        assert!(after - before >= 0.05, "{before} -> {after}");
        assert_ne!(own_cpu_list(), "unknown");
    }
}
