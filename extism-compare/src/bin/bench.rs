//! Extism's host (1.30, wasmtime 43) against async-wasm's (`async_wasm::extism`, wasmtime
//! 48), on the plugins of `guests/extism`, no WASI, config `vowels`:
//! - in interleaved rounds (thread CPU time, medians, ratios to Extism's per round): a
//!   minimal call on a long-lived plugin (`echo`, 16 bytes in and out) on the Rust and the
//!   AssemblyScript plugin, one host call (`host_echo`, 16 bytes, ready at once),
//!   `count_vowels` on 16 bytes and on 1 KiB, and a fresh plugin per request with one
//!   host call (Extism: `CompiledPlugin` + `Plugin::new_from_compiled`, and its `Pool`,
//!   which reuses instances: not a fresh plugin; ours: `CompiledPlugin::call` on an
//!   `AsyncEngine` with the pooling allocator, the host function pending once);
//! - concurrency: 10,000 calls of `lookup`, whose host function waits 10 ms, submitted at
//!   once: Extism on the thread pool a tokio user gives synchronous work (its blocking
//!   pool: Extism's host functions are synchronous), with a `Pool` of as many instances as
//!   blocking threads and with a fresh plugin per call; ours on one thread (tokio
//!   current-thread), a fresh instance per call, the host function awaiting a tokio timer.
//!
//! `cargo run --release --manifest-path extism-compare/Cargo.toml --bin bench --
//! [micro|concurrency|all] [--rounds N] [--calls N] [--only TEXT]` (`--only`: the groups
//! and concurrency variants whose name contains TEXT; one process per concurrency variant
//! keeps their RSS apart). `--profile TEXT --rounds S` serves only the variants whose name
//! contains TEXT, S seconds each, for a profiler.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Pool, PoolBuilder, Wasm};
use extism_compare::concurrency::{self, Concurrent, Report};
use extism_compare::host;
use extism_compare::ours::{self, Wait};
use extism_compare::plugins::{self, PluginFile};
use extism_compare::rounds::{self, Group, Variant};

const INPUT_16: &[u8; 16] = b"Hello, plugins!!";

fn manifest(plugin: PluginFile) -> Manifest {
    Manifest::new([Wasm::data(plugin.bytes())]).with_config_key("vowels", "aeiouAEIOU")
}

fn builder(plugin: PluginFile, lookup_delay: Option<Duration>) -> PluginBuilder<'static> {
    PluginBuilder::new(manifest(plugin))
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

/// One kind of request on a long-lived plugin: the export, its input, and a check of the
/// output (a benchmark of wrong work is worthless).
#[derive(Clone, Copy)]
struct Request {
    name: &'static str,
    plugin: PluginFile,
    export: &'static str,
    input: fn() -> Vec<u8>,
    check: fn(&[u8]) -> bool,
}

/// A call on one long-lived plugin (as Extism's `Plugin`).
struct ExtismCall {
    request: Request,
    plugin: Plugin,
    input: Vec<u8>,
}

impl Variant for ExtismCall {
    fn name(&self) -> String {
        format!("extism 1.30: {}", self.request.name)
    }

    fn request(&mut self) {
        let out: &[u8] = self
            .plugin
            .call(self.request.export, &self.input[..])
            .unwrap();
        let export = self.request.export;
        assert!((self.request.check)(out), "{export}: unexpected {out:?}");
    }
}

/// The same call on one long-lived `async_wasm::extism::Plugin`, its host functions ready at
/// once, driven by `ours::block_on`.
struct OursCall {
    request: Request,
    plugin: async_wasm::extism::Plugin,
    input: Vec<u8>,
}

impl Variant for OursCall {
    fn name(&self) -> String {
        format!("async-wasm: {}", self.request.name)
    }

    fn request(&mut self) {
        let call = self
            .plugin
            .call::<_, Vec<u8>>(self.request.export, &self.input[..]);
        let out = ours::block_on(call).unwrap();
        let export = self.request.export;
        assert!((self.request.check)(&out), "{export}: unexpected {out:?}");
    }
}

/// Extism's and our variant of `request`, Extism's first.
fn long_lived(engine: &async_wasm::AsyncEngine, request: Request) -> Vec<Box<dyn Variant>> {
    let compiled = ours::compile(engine, request.plugin, Wait::Ready);
    vec![
        Box::new(ExtismCall {
            request,
            plugin: builder(request.plugin, None).build().unwrap(),
            input: (request.input)(),
        }),
        Box::new(OursCall {
            request,
            plugin: ours::block_on(compiled.instantiate()).unwrap(),
            input: (request.input)(),
        }),
    ]
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

/// Ours: `CompiledPlugin::call`, a fresh store and instance from the pooling allocator,
/// `host_echo` pending once before it answers.
struct OursFresh {
    compiled: async_wasm::extism::CompiledPlugin,
    /// What the engine adds to the pooling allocator's defaults, for the variant's name.
    tuning: &'static str,
}

impl Variant for OursFresh {
    fn name(&self) -> String {
        format!(
            "async-wasm: CompiledPlugin::call (fresh instance, pooling{}), host call pending once",
            self.tuning
        )
    }

    fn request(&mut self) {
        let call = self.compiled.call::<_, Vec<u8>>("host_echo", &INPUT_16[..]);
        let out = ours::block_on(call).unwrap();
        assert_eq!(out, INPUT_16);
    }
}

fn pool(compiled: CompiledPlugin, instances: usize) -> Pool {
    PoolBuilder::new()
        .with_max_instances(instances)
        .build(move || Plugin::new_from_compiled(&compiled))
}

fn input_16() -> Vec<u8> {
    INPUT_16.to_vec()
}

fn is_input_16(out: &[u8]) -> bool {
    out == INPUT_16
}

fn micro_groups() -> Vec<Group> {
    let engine = ours::engine(100);
    let requests = [
        (
            "minimal call: echo, 16 bytes in and out, long-lived plugin",
            Request {
                name: "echo",
                plugin: plugins::RUST,
                export: "echo",
                input: input_16,
                check: is_input_16,
            },
        ),
        (
            "minimal call on the AssemblyScript plugin: echo, 16 bytes in and out",
            Request {
                name: "echo (AssemblyScript)",
                plugin: plugins::AS,
                export: "echo",
                input: input_16,
                check: is_input_16,
            },
        ),
        (
            "one host call: host_echo, 16-byte string in and out, ready at once",
            Request {
                name: "host_echo",
                plugin: plugins::RUST,
                export: "host_echo",
                input: input_16,
                check: is_input_16,
            },
        ),
        (
            "count_vowels on 16 bytes (config, a var, JSON out)",
            Request {
                name: "count_vowels 16 B",
                plugin: plugins::RUST,
                export: "count_vowels",
                input: input_16,
                check: |o| o.starts_with(b"{\"count\":4,"),
            },
        ),
        (
            "count_vowels on 1 KiB",
            Request {
                name: "count_vowels 1 KiB",
                plugin: plugins::RUST,
                export: "count_vowels",
                input: text_1k,
                check: |o| o.starts_with(b"{\"count\":"),
            },
        ),
    ];
    let mut groups: Vec<Group> = requests
        .into_iter()
        .map(|(name, request)| Group {
            name: name.into(),
            variants: long_lived(&engine, request),
        })
        .collect();
    let compiled = builder(plugins::RUST, None).compile().unwrap();
    groups.push(Group {
        name: "a plugin per request: fresh instance, one call, one host call".into(),
        variants: vec![
            Box::new(ExtismFresh {
                compiled: compiled.clone(),
            }),
            Box::new(ExtismPooled {
                pool: pool(compiled, 1),
            }),
            Box::new(OursFresh {
                compiled: ours::compile(&engine, plugins::RUST, Wait::PendingOnce),
                tuning: "",
            }),
            Box::new(OursFresh {
                compiled: ours::compile(
                    &ours::engine_pagemap_scan(100),
                    plugins::RUST,
                    Wait::PendingOnce,
                ),
                tuning: ", pagemap_scan, 2 MiB kept resident",
            }),
        ],
    });
    groups
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
        let compiled = builder(plugins::RUST, Some(Duration::from_millis(10)))
            .compile()
            .unwrap();
        let pool = pool(compiled.clone(), BLOCKING_THREADS);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .max_blocking_threads(BLOCKING_THREADS)
            .enable_all()
            .build()
            .unwrap();
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rss_before = concurrency::reset_peak_rss();
        let cpu = rounds::process_cpu_time();
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
        let cpu = rounds::process_cpu_time() - cpu;
        let rss_peak = concurrency::peak_rss();
        drop(runtime);
        Report {
            wall,
            cpu,
            latencies,
            rss_before,
            rss_peak,
            in_flight: most.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Ours on ONE thread (tokio current-thread, a `LocalSet`): each call a task on it, a
/// fresh instance per call (`CompiledPlugin::call`), `lookup` awaiting a 10 ms tokio timer.
///
/// On the pooling allocator the engine's `max_stores` bounds the instances at once, and
/// with them the memory: the calls past it wait for a slot (a semaphore of as many
/// permits: `CompiledPlugin::call` fails rather than waits at the bound). Each slot costs
/// memory mappings up front (two stacks, each a mapping and a guard page) and each live
/// instance four more, so Linux's default `vm.max_map_count` (65,530) allows about 7,500
/// slots (`Allocation::StackPool`, which maps stacks and memories on demand, runs out of
/// mappings near 9,400 calls at once here).
/// `warm`: the batch runs once untimed first, as on a server whose slots have served
/// before.
struct OursOneThread {
    warm: bool,
}

/// Pooling slots that fit Linux's default `vm.max_map_count` with room to spare.
const POOLING_SLOTS: usize = 7_500;

impl Concurrent for OursOneThread {
    fn name(&self) -> String {
        let warm = if self.warm { "warm" } else { "cold" };
        format!(
            "async-wasm: one thread (tokio current-thread), fresh instance per call (pooling, \
             {POOLING_SLOTS} slots, {warm})"
        )
    }

    fn run(&self, calls: usize) -> Report {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let slots = POOLING_SLOTS.min(calls);
        let engine = ours::engine(slots as u32);
        let compiled = ours::compile(
            &engine,
            plugins::RUST,
            Wait::Timer(Duration::from_millis(10)),
        );
        let local = tokio::task::LocalSet::new();
        let batch = |record: bool| {
            let permits = Rc::new(tokio::sync::Semaphore::new(slots));
            let (inside, most) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
            let rss_before = if record {
                concurrency::reset_peak_rss()
            } else {
                0
            };
            let cpu = rounds::process_cpu_time();
            let start = Instant::now();
            let latencies = local.block_on(&runtime, async {
                let tasks: Vec<_> = (0..calls)
                    .map(|i| {
                        let (compiled, permits, inside, most) = (
                            compiled.clone(),
                            permits.clone(),
                            inside.clone(),
                            most.clone(),
                        );
                        tokio::task::spawn_local(async move {
                            let key = format!("k{i}");
                            let _permit = permits.acquire().await.unwrap();
                            inside.set(inside.get() + 1);
                            most.set(most.get().max(inside.get()));
                            let out: String = compiled.call("lookup", key.as_str()).await.unwrap();
                            inside.set(inside.get() - 1);
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
            Report {
                wall: start.elapsed(),
                cpu: rounds::process_cpu_time() - cpu,
                latencies,
                rss_before,
                rss_peak: if record { concurrency::peak_rss() } else { 0 },
                in_flight: most.get(),
            }
        };
        if self.warm {
            batch(false);
        }
        batch(true)
    }
}

/// Serves requests of the variants whose name contains `variant` (in the groups whose name
/// contains `group`), nothing else, for `secs` seconds each: for a profiler.
fn profile(group: &str, variant: &str, secs: usize) {
    for mut group in micro_groups()
        .into_iter()
        .filter(|g| g.name.contains(group))
    {
        for v in group
            .variants
            .iter_mut()
            .filter(|v| v.name().contains(variant))
        {
            println!("profiling {} for {secs} s", v.name());
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < Duration::from_secs(secs as u64) {
                v.request();
                n += 1;
            }
            println!(
                "{n} requests, {:.2} µs each (wall)",
                start.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut what, mut rounds_n, mut calls) = (String::from("all"), 15, 10_000);
    let (mut only, mut variant) = (String::new(), None::<String>);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds_n = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds N")
            }
            "--calls" => calls = args.next().and_then(|n| n.parse().ok()).expect("--calls N"),
            "--only" => only = args.next().expect("--only TEXT"),
            "--profile" => variant = Some(args.next().expect("--profile TEXT")),
            "micro" | "concurrency" | "all" => what = arg,
            other => panic!("unknown argument {other:?}"),
        }
    }
    println!(
        "extism {} (wasmtime 43) against async-wasm (wasmtime 48), release build",
        extism_compare::extism_version()
    );
    if let Some(variant) = variant {
        profile(&only, &variant, rounds_n);
        return;
    }
    if what != "concurrency" {
        let mut groups: Vec<Group> = micro_groups()
            .into_iter()
            .filter(|g| g.name.contains(&only))
            .collect();
        let (thread, process) = rounds::run(&mut groups, rounds_n, Duration::from_millis(20));
        println!(
            "\n{rounds_n} interleaved rounds, µs per request, CPU time of the whole process \
             (Extism's timer thread included)"
        );
        rounds::print_tables(&groups, &process);
        println!("\nThe same rounds, CPU time of the calling thread only");
        rounds::print_tables(&groups, &thread);
    }
    if what != "micro" {
        let variants: Vec<Box<dyn Concurrent>> = vec![
            Box::new(ExtismBlocking { fresh: false }),
            Box::new(ExtismBlocking { fresh: true }),
            Box::new(OursOneThread { warm: false }),
            Box::new(OursOneThread { warm: true }),
        ];
        let variants: Vec<_> = variants
            .into_iter()
            .filter(|v| v.name().contains(&only))
            .collect();
        concurrency::print(&variants, calls);
    }
}
