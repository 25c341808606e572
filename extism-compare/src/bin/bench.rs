//! Extism's side of the benchmarks, on the Rust PDK plugin (`guests/extism/rust_plugin.wasm`):
//! - in interleaved rounds (thread CPU time, medians): a minimal call on a long-lived plugin
//!   (`echo`, 16 bytes in and out), one host call (`host_echo`, 16 bytes), `count_vowels` on
//!   16 bytes and on 1 KiB, and a fresh plugin per request (`CompiledPlugin` +
//!   `Plugin::new_from_compiled`, then one `host_echo` call), with Extism's `Pool` (which
//!   reuses instances: not a fresh plugin) beside it;
//! - concurrency: 10,000 calls of `lookup`, whose host function waits 10 ms, submitted at
//!   once on the thread pool a user gives Extism (tokio's blocking pool: Extism's host
//!   functions are synchronous), with a `Pool` of as many instances as blocking threads, and
//!   with a fresh plugin per call: throughput, latency quantiles, peak RSS.
//!
//! Each group is a list of [`Variant`]s and the concurrency runs a list of [`Concurrent`]s:
//! other hosts' variants go beside Extism's, which stays first (the baseline of the ratios).
//!
//! `cargo run --release --bin bench -- [micro|concurrency] [--rounds N] [--calls N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Pool, PoolBuilder, Wasm};
use extism_compare::rounds::{self, Group, Variant};
use extism_compare::{host, plugins};

const INPUT_16: &[u8; 16] = b"Hello, plugins!!";

fn manifest() -> Manifest {
    Manifest::new([Wasm::data(plugins::RUST.bytes())]).with_config_key("vowels", "aeiouAEIOU")
}

fn builder(lookup_delay: Option<Duration>) -> PluginBuilder<'static> {
    PluginBuilder::new(manifest())
        .with_wasi(false)
        .with_functions(host::functions(lookup_delay))
}

fn text_1k() -> Vec<u8> {
    b"The quick brown fox jumps over the lazy dog. "
        .iter()
        .copied()
        .cycle()
        .take(1024)
        .collect()
}

/// A call on one long-lived plugin (as Extism's `Plugin`), checked by its output length.
struct ExtismCall {
    name: &'static str,
    plugin: Plugin,
    export: &'static str,
    input: Vec<u8>,
    check: fn(&[u8]) -> bool,
}

impl Variant for ExtismCall {
    fn name(&self) -> String {
        format!("extism 1.30: {}", self.name)
    }

    fn request(&mut self) {
        let out: &[u8] = self.plugin.call(self.export, &self.input[..]).unwrap();
        assert!(
            (self.check)(out),
            "{}: unexpected output {out:?}",
            self.export
        );
    }
}

/// A fresh plugin from a `CompiledPlugin`, one `host_echo` call, dropped.
struct ExtismFresh {
    compiled: CompiledPlugin,
}

impl Variant for ExtismFresh {
    fn name(&self) -> String {
        "extism 1.30: CompiledPlugin + Plugin::new_from_compiled + call".to_string()
    }

    fn request(&mut self) {
        let mut plugin = Plugin::new_from_compiled(&self.compiled).unwrap();
        let out: &[u8] = plugin.call("host_echo", &INPUT_16[..]).unwrap();
        assert_eq!(out, INPUT_16);
    }
}

/// A plugin checked out of Extism's `Pool` (an instance reused, vars and all), one call.
struct ExtismPooled {
    pool: Pool,
}

impl Variant for ExtismPooled {
    fn name(&self) -> String {
        "extism 1.30: Pool::get + call (reused instance, not fresh)".to_string()
    }

    fn request(&mut self) {
        let mut plugin = self.pool.get(Duration::from_secs(10)).unwrap().unwrap();
        let out: Vec<u8> = plugin.call("host_echo", &INPUT_16[..]).unwrap();
        assert_eq!(out, INPUT_16);
    }
}

fn pool(compiled: CompiledPlugin, instances: usize) -> Pool {
    PoolBuilder::new()
        .with_max_instances(instances)
        .build(move || Plugin::new_from_compiled(&compiled))
}

fn long_lived(
    name: &'static str,
    export: &'static str,
    input: Vec<u8>,
    check: fn(&[u8]) -> bool,
) -> Box<dyn Variant> {
    Box::new(ExtismCall {
        name,
        plugin: builder(None).build().unwrap(),
        export,
        input,
        check,
    })
}

fn micro_groups() -> Vec<Group> {
    let compiled = builder(None).compile().unwrap();
    vec![
        Group {
            name: "minimal call: echo, 16 bytes in and out, long-lived plugin".into(),
            variants: vec![long_lived("echo", "echo", INPUT_16.to_vec(), |o| {
                o == INPUT_16
            })],
        },
        Group {
            name: "one host call: host_echo, 16-byte string in and out".into(),
            variants: vec![long_lived(
                "host_echo",
                "host_echo",
                INPUT_16.to_vec(),
                |o| o == INPUT_16,
            )],
        },
        Group {
            name: "count_vowels on 16 bytes (config, a var, JSON out)".into(),
            variants: vec![long_lived(
                "count_vowels 16 B",
                "count_vowels",
                INPUT_16.to_vec(),
                |o| o.starts_with(b"{\"count\":4,"),
            )],
        },
        Group {
            name: "count_vowels on 1 KiB".into(),
            variants: vec![long_lived(
                "count_vowels 1 KiB",
                "count_vowels",
                text_1k(),
                |o| o.starts_with(b"{\"count\":"),
            )],
        },
        Group {
            name: "a plugin per request: fresh instance, one call, one host call".into(),
            variants: vec![
                Box::new(ExtismFresh {
                    compiled: compiled.clone(),
                }),
                Box::new(ExtismPooled {
                    pool: pool(compiled, 1),
                }),
            ],
        },
    ]
}

/// What one concurrency run measured.
pub struct Report {
    pub wall: Duration,
    /// From submission (all at once) to completion, per call.
    pub latencies: Vec<Duration>,
    /// Peak resident memory during the run over the resident memory before it.
    pub peak_rss_growth: u64,
    /// The most calls that were inside the plugin at once.
    pub in_flight: usize,
}

/// A host's way to serve `calls` plugin calls each awaiting a 10 ms host function, all
/// submitted at once.
pub trait Concurrent {
    fn name(&self) -> String;
    fn run(&self, calls: usize) -> Report;
}

/// Extism on tokio's blocking pool (what a tokio service gives synchronous work): each call
/// a `spawn_blocking` task, its plugin from a `Pool` of one instance per blocking thread or
/// fresh from a `CompiledPlugin`.
struct ExtismBlocking {
    fresh: bool,
}

const BLOCKING_THREADS: usize = 512; // tokio's default `max_blocking_threads`

impl Concurrent for ExtismBlocking {
    fn name(&self) -> String {
        if self.fresh {
            format!(
                "extism 1.30: spawn_blocking ({BLOCKING_THREADS} threads), fresh plugin per call"
            )
        } else {
            format!(
                "extism 1.30: spawn_blocking ({BLOCKING_THREADS} threads), Pool of {BLOCKING_THREADS}"
            )
        }
    }

    fn run(&self, calls: usize) -> Report {
        let compiled = builder(Some(Duration::from_millis(10))).compile().unwrap();
        let pool = pool(compiled.clone(), BLOCKING_THREADS);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .max_blocking_threads(BLOCKING_THREADS)
            .enable_all()
            .build()
            .unwrap();
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rss_before = reset_peak_rss();
        let start = Instant::now();
        let latencies = runtime.block_on(async {
            let tasks: Vec<_> = (0..calls)
                .map(|i| {
                    let (pool, compiled, inside, most) =
                        (pool.clone(), compiled.clone(), inside.clone(), most.clone());
                    let fresh = self.fresh;
                    tokio::task::spawn_blocking(move || {
                        use std::sync::atomic::Ordering::Relaxed;
                        let key = format!("k{i}");
                        let now = inside.fetch_add(1, Relaxed) + 1;
                        most.fetch_max(now, Relaxed);
                        let out: String = if fresh {
                            let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
                            plugin
                                .call::<&str, &str>("lookup", key.as_str())
                                .unwrap()
                                .to_string()
                        } else {
                            let mut plugin = pool.get(Duration::from_secs(600)).unwrap().unwrap();
                            plugin.call("lookup", key.as_str()).unwrap()
                        };
                        inside.fetch_sub(1, Relaxed);
                        assert_eq!(out, host::lookup_value(&key));
                        start.elapsed()
                    })
                })
                .collect();
            let mut latencies = Vec::with_capacity(calls);
            for task in tasks {
                latencies.push(task.await.unwrap());
            }
            latencies
        });
        let wall = start.elapsed();
        let peak = peak_rss();
        drop(runtime);
        Report {
            wall,
            latencies,
            peak_rss_growth: peak.saturating_sub(rss_before),
            in_flight: most.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Resets the process's peak RSS to its current RSS (Linux's `clear_refs`); returns it.
fn reset_peak_rss() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:") * 1024
}

fn peak_rss() -> u64 {
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

fn print_concurrency(variants: &[Box<dyn Concurrent>], calls: usize) {
    println!("\n{calls} calls at once, each awaiting a 10 ms host function (lookup)\n");
    println!(
        "| variant | wall s | calls/s | p50 ms | p99 ms | max ms | most in flight | peak RSS growth MiB | KiB per call in flight |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for variant in variants {
        let r = variant.run(calls);
        let ms: Vec<f64> = r.latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        println!(
            "| {} | {:.3} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.1} |",
            variant.name(),
            r.wall.as_secs_f64(),
            calls as f64 / r.wall.as_secs_f64(),
            rounds::quantile(&ms, 0.5),
            rounds::quantile(&ms, 0.99),
            rounds::quantile(&ms, 1.0),
            r.in_flight,
            r.peak_rss_growth as f64 / (1 << 20) as f64,
            r.peak_rss_growth as f64 / 1024.0 / r.in_flight.max(1) as f64,
        );
    }
}

/// Both wasmtimes in one binary: async-wasm's (48) compiles the same plugin that Extism's
/// (43) runs, so that later rounds can put both hosts in one interleaved run.
fn wasmtime_48_check() {
    let pool = async_wasm::StackPool::new(1 << 20);
    let engine = pool.engine(&wasmtime::Config::new()).unwrap();
    let module = wasmtime::Module::new(&engine, plugins::RUST.bytes()).unwrap();
    println!(
        "wasmtime 48 (async-wasm) compiled rust_plugin.wasm beside extism {}: {} imports, {} exports",
        extism_compare::extism_version(),
        module.imports().len(),
        module.exports().len()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut what, mut rounds_n, mut calls) = (String::from("all"), 15, 10_000);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds_n = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds N")
            }
            "--calls" => calls = args.next().and_then(|n| n.parse().ok()).expect("--calls N"),
            "micro" | "concurrency" | "all" => what = arg,
            other => panic!("unknown argument {other:?}"),
        }
    }
    wasmtime_48_check();
    if what != "concurrency" {
        let mut groups = micro_groups();
        let samples = rounds::run(&mut groups, rounds_n, Duration::from_millis(20));
        println!("\n{rounds_n} interleaved rounds, µs per request (thread CPU time)");
        rounds::print_tables(&groups, &samples);
    }
    if what != "micro" {
        let variants: Vec<Box<dyn Concurrent>> = vec![
            Box::new(ExtismBlocking { fresh: false }),
            Box::new(ExtismBlocking { fresh: true }),
        ];
        print_concurrency(&variants, calls);
    }
}
