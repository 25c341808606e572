//! Interleaved rounds: each round runs every variant once, a batch of requests each, in a
//! new shuffled order, timed with CPU time (the calling thread's, and the whole process's:
//! Extism's host hands every call's timeout to a timer thread of its own, whose work the
//! calling thread's clock misses). On a shared machine the load then falls on every variant
//! alike; a variant's figure is its median over rounds.

use std::time::{Duration, Instant};

/// One way to serve one kind of request; a benchmark group holds Extism's and, beside it,
/// other hosts' variants of the same work.
pub trait Variant {
    /// The row's name in the table.
    fn name(&self) -> String;
    /// Serves one request; panics if the answer is wrong (a benchmark of wrong work is
    /// worthless).
    fn request(&mut self);
}

/// Requests of one kind, each variant serving them its own way; the first is the baseline
/// of the group's ratios.
pub struct Group {
    pub name: String,
    pub variants: Vec<Box<dyn Variant>>,
}

/// The CPU time this thread has used (not time waiting for a core, nor other threads').
pub fn thread_cpu_time() -> Duration {
    cpu_time(libc::CLOCK_THREAD_CPUTIME_ID, "CLOCK_THREAD_CPUTIME_ID")
}

/// The CPU time of every thread of this process.
pub fn process_cpu_time() -> Duration {
    cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID, "CLOCK_PROCESS_CPUTIME_ID")
}

/// The time of CPU-time clock `clock` (named `name` in the panic should it fail).
fn cpu_time(clock: libc::clockid_t, name: &str) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec, and both clocks this is called with
    // exist on Linux, where this benchmark runs.
    let ret = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(ret, 0, "clock_gettime({name})");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// How many requests make a batch of about `target` for `variant` (at least 1), measured
/// on an untimed warm-up that also warms caches and pools.
fn calibrate(variant: &mut dyn Variant, target: Duration) -> usize {
    let start = Instant::now();
    let mut n = 0;
    while n < 3 || start.elapsed() < target {
        variant.request();
        n += 1;
    }
    let per = start.elapsed() / n as u32;
    (target.as_nanos() / per.as_nanos().max(1)).max(1) as usize
}

/// Per group, per variant, the µs per request of each round.
pub type Samples = Vec<Vec<Vec<f64>>>;

/// Runs `rounds` rounds over every variant of every group; returns the samples by the
/// calling thread's CPU time and by the process's.
pub fn run(groups: &mut [Group], rounds: usize, batch_time: Duration) -> (Samples, Samples) {
    let mut slots = Vec::new();
    for (g, group) in groups.iter_mut().enumerate() {
        for (v, variant) in group.variants.iter_mut().enumerate() {
            slots.push((g, v, calibrate(variant.as_mut(), batch_time)));
        }
    }
    let mut samples: Samples = groups
        .iter()
        .map(|g| vec![Vec::with_capacity(rounds); g.variants.len()])
        .collect();
    let mut process_samples = samples.clone();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..rounds {
        rng.shuffle(&mut slots);
        for &(g, v, batch) in &slots {
            let variant = groups[g].variants[v].as_mut();
            let (start, process_start) = (thread_cpu_time(), process_cpu_time());
            for _ in 0..batch {
                variant.request();
            }
            let elapsed = thread_cpu_time() - start;
            let process_elapsed = process_cpu_time() - process_start;
            samples[g][v].push(elapsed.as_secs_f64() * 1e6 / batch as f64);
            process_samples[g][v].push(process_elapsed.as_secs_f64() * 1e6 / batch as f64);
        }
    }
    (samples, process_samples)
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

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The `q` quantile (0..=1) of `values`, interpolated.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = q * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

/// Prints one markdown table per group: median, IQR, and the ratio to the group's first
/// variant (of medians, and the median of per-round ratios).
pub fn print_tables(groups: &[Group], samples: &[Vec<Vec<f64>>]) {
    for (group, samples) in groups.iter().zip(samples) {
        let base = &samples[0];
        println!("\n{}\n", group.name);
        println!("| variant | median µs | IQR µs | × first (medians) | × first (per round) |");
        println!("|---|---:|---:|---:|---:|");
        for (variant, s) in group.variants.iter().zip(samples) {
            let paired: Vec<f64> = s.iter().zip(base).map(|(a, b)| a / b).collect();
            println!(
                "| {} | {:.2} | {:.2}–{:.2} | {:.3} | {:.3} |",
                variant.name(),
                quantile(s, 0.5),
                quantile(s, 0.25),
                quantile(s, 0.75),
                quantile(s, 0.5) / quantile(base, 0.5),
                quantile(&paired, 0.5),
            );
        }
    }
}
