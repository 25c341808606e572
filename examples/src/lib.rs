//! Helpers the example programs share: reading this process's memory use, and running this
//! program again as a child process, so that each measurement has a process of its own.

use std::io;
use std::process::{Command, ExitStatus, Output, Stdio};

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
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
