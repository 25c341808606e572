//! Helpers the example programs share: reading this process's memory and CPU use and the
//! machine's load, and running this program again as a child process, so that each
//! measurement has a process of its own.

use std::io;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// Memory use, from `/proc` (Linux). Elsewhere every function returns `None`, which the
/// programs print as "n/a".
pub mod rss {
    /// The resident set size now, in KiB (`VmRSS`).
    pub fn current_kib() -> Option<u64> {
        status_kib("VmRSS:")
    }

    /// The highest resident set size this process has had, in KiB (`VmHWM`): the peak of a
    /// whole run, however short the peak lasted.
    pub fn peak_kib() -> Option<u64> {
        status_kib("VmHWM:")
    }

    /// The memory the kernel holds for the stacks of every thread on the machine, in KiB
    /// (`KernelStack` of `/proc/meminfo`; 16 KiB a thread on x86-64). RSS leaves it out, so
    /// a program that starts threads reads it before and after to see their whole cost.
    pub fn kernel_stacks_kib() -> Option<u64> {
        field_kib("/proc/meminfo", "KernelStack:")
    }

    fn status_kib(field: &str) -> Option<u64> {
        field_kib("/proc/self/status", field)
    }

    fn field_kib(file: &str, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(file).ok()?;
        let value = text.lines().find_map(|line| line.strip_prefix(field))?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    }
}

/// The CPU time this process has used so far, user and system, all its threads included
/// (those that ended too), from `/proc/self/stat` (Linux); `None` elsewhere. Its resolution
/// is the kernel's clock tick, 10 ms.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_time_from_stat(&stat)
}

/// The ticks in which `/proc/*/stat` counts CPU time: `USER_HZ`, which Linux fixes at 100
/// on every architecture it exports to user space.
const TICKS_PER_SECOND: u64 = 100;

fn cpu_time_from_stat(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // Fields 14 and 15 of the line (utime, stime); `fields` starts at field 3.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (user + system) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The machine's load averages over 1, 5 and 15 minutes, as `/proc/loadavg` (Linux) gives
/// them; `None` elsewhere.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let averages: Vec<&str> = text.split_whitespace().take(3).collect();
    (averages.len() == 3).then(|| averages.join(" "))
}

/// Runs this program again with `args`, capturing its standard output; its standard error
/// goes where ours does, so a child's error messages reach the user as they are.
pub fn run_self_captured(args: &[String]) -> io::Result<Output> {
    Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
}

/// Runs this program again with `args`, its output going where ours does.
pub fn run_self(args: &[String]) -> io::Result<ExitStatus> {
    Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::null())
        .status()
}

/// `n` with a comma between each group of three digits: `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{cpu_time_from_stat, thousands};
    use std::time::Duration;

    #[test]
    fn cpu_time_counts_user_and_system_ticks() {
        // A command name with a space and a parenthesis, as a program may have.
        let stat = "4242 (de) mo) R 1 4242 4242 0 -1 4194304 120 0 0 0 250 37 0 0 20 0 3 0 1";
        assert_eq!(cpu_time_from_stat(stat), Some(Duration::from_millis(2_870)));
        assert_eq!(cpu_time_from_stat("4242 (demo) R 1"), None);
    }

    #[test]
    fn cpu_time_reads_this_process() {
        if cfg!(target_os = "linux") {
            assert!(super::cpu_time().is_some());
            assert!(super::load_average().is_some());
        }
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
