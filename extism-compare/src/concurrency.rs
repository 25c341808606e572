//! Many plugin calls at once, each awaiting a host function: what a run measures, and the
//! process's resident memory read from `/proc/self/status`.

use std::time::Duration;

use crate::rounds;

/// What one concurrency run measured.
pub struct Report {
    pub wall: Duration,
    /// The process's CPU time (user and system, every thread) during the run.
    pub cpu: Duration,
    /// From submission (all at once) to completion, per call.
    pub latencies: Vec<Duration>,
    /// Resident memory just before the run (`VmRSS`, after resetting the peak to it).
    pub rss_before: u64,
    /// The peak resident memory during the run (`VmHWM`).
    pub rss_peak: u64,
    /// The most calls that were inside a plugin at once.
    pub in_flight: usize,
}

/// A host's way to serve `calls` plugin calls each awaiting a 10 ms host function, all
/// submitted at once.
pub trait Concurrent {
    fn name(&self) -> String;
    fn run(&self, calls: usize) -> Report;
}

/// Resets the process's peak RSS to its current RSS (Linux's `clear_refs`); returns it.
pub fn reset_peak_rss() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:") * 1024
}

/// The peak RSS since the last [`reset_peak_rss`].
pub fn peak_rss() -> u64 {
    status_kib("VmHWM:") * 1024
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// Runs each variant once and prints a markdown table of what it measured.
pub fn print(variants: &[Box<dyn Concurrent>], calls: usize) {
    println!("\n{calls} calls at once, each awaiting a 10 ms host function (lookup)\n");
    println!(
        "| variant | wall s | calls/s | CPU µs a call | p50 ms | p99 ms | max ms | most in flight | VmRSS before MiB | VmHWM MiB | growth MiB | KiB per call in flight |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    const MIB: f64 = (1 << 20) as f64;
    for variant in variants {
        let r = variant.run(calls);
        let ms: Vec<f64> = r.latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let growth = r.rss_peak.saturating_sub(r.rss_before);
        println!(
            "| {} | {:.3} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            variant.name(),
            r.wall.as_secs_f64(),
            calls as f64 / r.wall.as_secs_f64(),
            r.cpu.as_secs_f64() * 1e6 / calls as f64,
            rounds::quantile(&ms, 0.5),
            rounds::quantile(&ms, 0.99),
            rounds::quantile(&ms, 1.0),
            r.in_flight,
            r.rss_before as f64 / MIB,
            r.rss_peak as f64 / MIB,
            growth as f64 / MIB,
            growth as f64 / 1024.0 / r.in_flight.max(1) as f64,
        );
    }
}
