//! What a child measures and reports, and what the parent makes of the runs: medians and
//! spreads, so that one run slowed by the rest of the machine does not decide a figure.

use std::ops::Range;
use std::time::{Duration, Instant};

use examples::rss;
use wasmtime::Result;
use wasmtime::error::Context as _;

use crate::plugin::{self, Answer, Request};

/// One run of one mode, as a child prints it and the parent reads it back.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub wall: Duration,
    pub ok: usize,
    pub failed: usize,
    /// Threads that ran guests.
    pub threads: usize,
    /// The process's CPU time, user and system, while the guests ran.
    pub cpu: Option<Duration>,
    /// RSS just before the first guest: the engine, the compiled plugin, the runtime.
    pub rss_before_kib: Option<u64>,
    /// The highest RSS of the whole run (`VmHWM`).
    pub peak_rss_kib: Option<u64>,
    /// What the kernel's thread stacks grew by while the guests ran (machine-wide, so
    /// other programs starting threads meanwhile are counted too).
    pub kernel_stacks_kib: Option<u64>,
}

impl Report {
    /// Requests answered right, per second.
    pub fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64()
    }

    /// CPU time per request, in µs: the figure least moved by what else the machine runs.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let requests = self.ok + self.failed;
        Some(self.cpu?.as_secs_f64() * 1e6 / requests.max(1) as f64)
    }

    /// What one more guest at once costs: the RSS the guests added at the peak, and the
    /// kernel stacks of their threads, shared out.
    pub fn memory_per_guest_kib(&self, guests: usize) -> Option<f64> {
        let rss = self.peak_rss_kib?.saturating_sub(self.rss_before_kib?);
        Some((rss + self.kernel_stacks_kib?) as f64 / guests as f64)
    }

    /// One line of `key=value` pairs; `n/a` for what this platform cannot tell.
    pub fn encode(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("n/a".to_string(), |v| v.to_string());
        format!(
            "wall_us={} ok={} failed={} threads={} cpu_us={} rss_before_kib={} \
             peak_rss_kib={} kernel_stacks_kib={}",
            self.wall.as_micros(),
            self.ok,
            self.failed,
            self.threads,
            opt(self.cpu.map(|cpu| cpu.as_micros() as u64)),
            opt(self.rss_before_kib),
            opt(self.peak_rss_kib),
            opt(self.kernel_stacks_kib),
        )
    }

    pub fn decode(line: &str) -> Result<Report> {
        let mut report = Report::default();
        for pair in line.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("a child printed {line:?}"))?;
            let opt = || (value != "n/a").then(|| value.parse::<u64>()).transpose();
            match key {
                "wall_us" => report.wall = Duration::from_micros(value.parse()?),
                "ok" => report.ok = value.parse()?,
                "failed" => report.failed = value.parse()?,
                "threads" => report.threads = value.parse()?,
                "cpu_us" => report.cpu = opt()?.map(Duration::from_micros),
                "rss_before_kib" => report.rss_before_kib = opt()?,
                "peak_rss_kib" => report.peak_rss_kib = opt()?,
                "kernel_stacks_kib" => report.kernel_stacks_kib = opt()?,
                _ => wasmtime::bail!("a child printed an unknown key {key:?}"),
            }
        }
        Ok(report)
    }
}

/// A figure over several runs: the median, and the lowest and highest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` when there is no value.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        let (&min, &max) = (values.first()?, values.last()?);
        let mid = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        };
        Some(Spread { median, min, max })
    }
}

/// Requests answered right and not, with the first thing that went wrong.
#[derive(Default)]
pub struct Tally {
    pub ok: usize,
    pub failed: usize,
    pub first_error: Option<String>,
}

impl Tally {
    /// Checks one answer.
    pub fn record(&mut self, request: &Request, answer: &Answer) {
        match plugin::check(request, answer) {
            Ok(()) => self.ok += 1,
            Err(error) => self.fail(1, error),
        }
    }

    /// Ends the session of the guest whose requests are `ids`, on that guest's own tally:
    /// when the session failed, the requests it got no answer for count as failed.
    pub fn end_session(&mut self, ids: Range<u32>, session: Result<()>) {
        if let Err(error) = session {
            let unanswered = ids.len() - (self.ok + self.failed);
            self.fail(unanswered, format!("requests {ids:?}: {error:#}"));
        }
    }

    fn fail(&mut self, requests: usize, error: String) {
        self.failed += requests;
        self.first_error.get_or_insert(error);
    }

    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        if let Some(error) = other.first_error {
            self.first_error.get_or_insert(error);
        }
    }
}

/// A child's readings around its guests.
pub struct Readings {
    start: Instant,
    cpu_before: Option<Duration>,
    rss_before_kib: Option<u64>,
    kernel_stacks_before_kib: Option<u64>,
    kernel_stacks_started_kib: Option<u64>,
}

impl Readings {
    /// Reads what the process holds before its first guest, and starts the clock.
    pub fn start() -> Readings {
        Readings {
            cpu_before: examples::cpu_time(),
            rss_before_kib: rss::current_kib(),
            kernel_stacks_before_kib: rss::kernel_stacks_kib(),
            kernel_stacks_started_kib: None,
            start: Instant::now(),
        }
    }

    /// Reads the kernel's thread stacks once every guest has started, when all its threads
    /// are alive.
    pub fn all_started(&mut self) {
        self.kernel_stacks_started_kib = rss::kernel_stacks_kib();
    }

    /// Ends a child's run: the peak RSS is read now, after the last guest; the first
    /// failure, if any, goes to standard error, which the parent passes on.
    pub fn finish(self, mode_name: &str, tally: Tally, threads: usize) -> Report {
        let wall = self.start.elapsed();
        let cpu = examples::cpu_time()
            .zip(self.cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        if let Some(error) = &tally.first_error {
            eprintln!("{mode_name}: first failure: {error}");
        }
        let kernel_stacks_kib = self
            .kernel_stacks_started_kib
            .zip(self.kernel_stacks_before_kib)
            .map(|(started, before)| started.saturating_sub(before));
        Report {
            wall,
            ok: tally.ok,
            failed: tally.failed,
            threads,
            cpu,
            rss_before_kib: self.rss_before_kib,
            peak_rss_kib: rss::peak_kib(),
            kernel_stacks_kib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_its_line() {
        let report = Report {
            wall: Duration::from_micros(1_234_567),
            ok: 19_990,
            failed: 10,
            threads: 2_000,
            cpu: Some(Duration::from_micros(2_500_000)),
            rss_before_kib: Some(30_000),
            peak_rss_kib: None,
            kernel_stacks_kib: Some(32_000),
        };
        assert_eq!(Report::decode(&report.encode()).unwrap(), report);
        assert!(Report::decode("wall_us=1 color=red").is_err());
        assert!(Report::decode("wall_us=x").is_err());
    }

    #[test]
    fn derived_figures() {
        let report = Report {
            wall: Duration::from_secs(2),
            ok: 19_000,
            failed: 1_000,
            cpu: Some(Duration::from_secs(1)),
            rss_before_kib: Some(10_000),
            peak_rss_kib: Some(30_000),
            kernel_stacks_kib: Some(12_000),
            ..Report::default()
        };
        assert_eq!(report.requests_per_second(), 9_500.0);
        assert_eq!(report.cpu_us_per_request(), Some(50.0));
        assert_eq!(report.memory_per_guest_kib(2_000), Some(16.0));
    }

    #[test]
    fn spreads_take_the_middle_and_the_ends() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn a_failed_session_fails_its_unanswered_requests() {
        let mut tally = Tally::default();
        let request = Request::new(0, 5);
        let wrong = Answer {
            status: 1,
            reply: None,
        };
        tally.record(&request, &wrong);
        tally.end_session(5..10, Err(wasmtime::format_err!("connection reset")));
        assert_eq!((tally.ok, tally.failed), (0, 5));
        assert!(tally.first_error.unwrap().contains("could not read"));
    }
}
