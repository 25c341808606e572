//! Interleaved rounds: every variant runs once per round, a batch of requests each time,
//! timed with the thread's CPU time. On a shared machine a criterion run measures each
//! variant during a different stretch of other people's load; rounds spread that load over
//! every variant alike, and a per-round ratio cancels most of what remains.

use std::hint::black_box;
use std::time::Duration;

use super::BlockingRequest;

/// The CPU time this thread has used: time spent in other processes or threads, or waiting
/// for a core, is not counted; time in the kernel on the thread's behalf (`mmap`,
/// `madvise`, page faults) is.
#[cfg(unix)]
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID always exists on
    // the unix systems these benchmarks run on.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(ret, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Elsewhere, wall-clock time since the first call stands in.
#[cfg(not(unix))]
pub fn thread_cpu_time() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// A number from the environment, or `default` when unset; a malformed one is an error
/// worth stopping for.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

/// Runs `rounds` rounds of every variant, `batch` requests each, after one untimed batch
/// each to warm pools and caches. Each round runs the variants in a new shuffled order, so
/// none always runs first or after the same neighbour (whose leftovers in caches, TLB or
/// the allocators' queues it would otherwise always inherit). Returns, per variant, the µs
/// per request of each round, in round order.
pub fn run_rounds(requests: &[BlockingRequest], rounds: usize, batch: usize) -> Vec<Vec<f64>> {
    for request in requests {
        for _ in 0..batch {
            black_box(request());
        }
    }
    let mut samples = vec![Vec::with_capacity(rounds); requests.len()];
    let mut order: Vec<usize> = (0..requests.len()).collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            let request = &requests[i];
            let start = thread_cpu_time();
            for _ in 0..batch {
                black_box(request());
            }
            let elapsed = thread_cpu_time() - start;
            samples[i].push(elapsed.as_secs_f64() * 1e6 / batch as f64);
        }
    }
    samples
}

/// A small fixed-seed generator, so that runs shuffle alike.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fisher–Yates.
    fn shuffle(&mut self, items: &mut [usize]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The `q` quantile (0..=1) of `values`, interpolated; `values` need not be sorted.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = q * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// One variant's summary against its baseline.
pub struct Summary {
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
    pub min: f64,
    pub max: f64,
    /// This median over the baseline's median.
    pub ratio_of_medians: f64,
    /// The median, over rounds, of this variant's time over the baseline's in the same round.
    pub paired_ratio: f64,
}

pub fn summarize(samples: &[f64], baseline: &[f64]) -> Summary {
    let paired: Vec<f64> = samples.iter().zip(baseline).map(|(a, b)| a / b).collect();
    Summary {
        median: median(samples),
        p25: quantile(samples, 0.25),
        p75: quantile(samples, 0.75),
        min: quantile(samples, 0.0),
        max: quantile(samples, 1.0),
        ratio_of_medians: median(samples) / median(baseline),
        paired_ratio: median(&paired),
    }
}

/// The header of [`print_row`]'s table.
pub fn print_header(first: &str, baseline: &str) {
    println!(
        "| {first} | median µs | IQR µs | min–max µs | ×{baseline} (medians) | ×{baseline} (per round) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
}

pub fn print_row(name: &str, s: &Summary) {
    println!(
        "| {name} | {:.2} | {:.2}–{:.2} | {:.2}–{:.2} | {:.2} | {:.2} |",
        s.median, s.p25, s.p75, s.min, s.max, s.ratio_of_medians, s.paired_ratio
    );
}

/// Variants measured together and printed in groups: each group's table compares its
/// variants with its first one.
pub struct Groups {
    /// (group label, variant name, request), each group's baseline first.
    pub variants: Vec<(String, &'static str, BlockingRequest)>,
}

impl Groups {
    /// Runs every variant in `ASYNC_WASM_BENCH_ROUNDS` (default 40) interleaved rounds of
    /// `ASYNC_WASM_BENCH_BATCH` (default `batch`) requests, after printing `title` (which
    /// gets the counts), then one table per group, in the order the groups came.
    pub fn run(self, title: &str, batch: usize) {
        let rounds = env_usize("ASYNC_WASM_BENCH_ROUNDS", 40).max(1);
        let batch = env_usize("ASYNC_WASM_BENCH_BATCH", batch).max(1);
        println!(
            "{title}: {} variants, {rounds} interleaved rounds of {batch} requests each, \
             thread CPU time",
            self.variants.len()
        );
        let requests: Vec<_> = self.variants.iter().map(|(_, _, r)| r.clone()).collect();
        let samples = run_rounds(&requests, rounds, batch);
        let mut labels: Vec<&str> = Vec::new();
        for (label, _, _) in &self.variants {
            if !labels.contains(&label.as_str()) {
                labels.push(label);
            }
        }
        for label in labels {
            let members: Vec<usize> = (0..self.variants.len())
                .filter(|&i| self.variants[i].0 == label)
                .collect();
            let baseline = members[0];
            println!();
            println!("{label}");
            print_header("variant", self.variants[baseline].1);
            for i in members {
                print_row(
                    self.variants[i].1,
                    &summarize(&samples[i], &samples[baseline]),
                );
            }
        }
    }
}
