//! Which of the pooling allocator's settings matter to a store per request, by measurement.
//!
//! Each group changes one setting of `common::tuned_pooling` (or of wasmtime's defaults, for
//! the first group), and runs every value of it in interleaved rounds (see
//! `common::rounds`), on four cases: the guest with memory called synchronously, the same
//! called async, the guest without memory called async, and the guest with memory called
//! async with `async_stack_zeroing`. Ratios are to the group's first value, per round.
//!
//! The last group is the on-demand allocator that a `StackPool` works with (wasmtime 48
//! gives `Config::with_host_stack` to the on-demand allocator only): how far tuning its
//! memory settings takes the guest with memory. Last, what the fastest of those
//! (`common::malloc_memory`) costs a guest's own code: a loop of memory loads, each
//! bounds-checked in code there.
//!
//! Run with `cargo bench -p async-wasm --bench pooling_tuning`; `ASYNC_WASM_BENCH_ROUNDS`
//! (default 20) and `ASYNC_WASM_BENCH_BATCH` (default 200) change the run.

#[allow(dead_code)]
mod common;

use async_wasm::StackPool;
use common::rounds::{env_usize, print_header, print_row, run_rounds, summarize};
use common::{Api, Guest, PoolingSettings, STACK_SIZE, Variant, default_pooling, tuned_pooling};
use wasmtime::{Config, Engine, PoolingAllocationConfig};

/// A value of the setting a group varies: a name and the engine configuration, given
/// whether async stacks are zeroed.
struct Candidate {
    name: String,
    config: Box<dyn Fn(bool) -> Config>,
}

fn pooling(name: &str, settings: PoolingSettings) -> Candidate {
    Candidate {
        name: name.to_string(),
        config: Box::new(move |zeroing| settings.config(zeroing)),
    }
}

/// `tuned_pooling` with one change.
fn tuned_with(name: &str, change: impl FnOnce(&mut PoolingSettings)) -> Candidate {
    let mut settings = tuned_pooling();
    change(&mut settings);
    pooling(name, settings)
}

const CASES: [(Guest, Api, bool, &str); 4] = [
    (Guest::Memory, Api::Sync, false, "memory sync"),
    (Guest::Memory, Api::WasmtimeAsync, false, "memory async"),
    (
        Guest::NoMemory,
        Api::WasmtimeAsync,
        false,
        "no memory async",
    ),
    (
        Guest::Memory,
        Api::WasmtimeAsync,
        true,
        "memory async zeroed",
    ),
];

fn groups() -> Vec<(&'static str, Vec<Candidate>)> {
    const KIB: usize = 1 << 10;
    let pagemap = PoolingAllocationConfig::is_pagemap_scan_available();
    let mut keep_resident = vec![
        tuned_with("4 KiB (tuned)", |_| {}),
        tuned_with("0", |s| s.memory_keep_resident = 0),
        tuned_with("8 KiB", |s| s.memory_keep_resident = 8 * KIB),
        tuned_with("64 KiB", |s| s.memory_keep_resident = 64 * KIB),
    ];
    if pagemap {
        keep_resident.push(tuned_with("64 KiB + pagemap_scan", |s| {
            s.memory_keep_resident = 64 * KIB;
            s.pagemap_scan = true;
        }));
        keep_resident.push(tuned_with("1 MiB + pagemap_scan", |s| {
            s.memory_keep_resident = 1 << 20;
            s.pagemap_scan = true;
        }));
    }
    vec![
        (
            "wasmtime defaults vs tuned",
            vec![
                pooling("wasmtime defaults", default_pooling()),
                pooling("tuned", tuned_pooling()),
            ],
        ),
        ("linear_memory_keep_resident", keep_resident),
        (
            "decommit_batch_size",
            vec![
                tuned_with("32 (tuned)", |_| {}),
                tuned_with("1", |s| s.decommit_batch_size = 1),
                tuned_with("8", |s| s.decommit_batch_size = 8),
                tuned_with("128", |s| s.decommit_batch_size = 128),
            ],
        ),
        (
            "async_stack_keep_resident",
            vec![
                tuned_with("8 KiB (tuned)", |_| {}),
                tuned_with("0", |s| s.stack_keep_resident = 0),
                tuned_with("4 KiB", |s| s.stack_keep_resident = 4 * KIB),
                tuned_with("16 KiB", |s| s.stack_keep_resident = 16 * KIB),
                tuned_with("64 KiB", |s| s.stack_keep_resident = 64 * KIB),
            ],
        ),
        (
            "table_keep_resident",
            vec![
                tuned_with("0 (tuned)", |_| {}),
                tuned_with("64 KiB", |s| s.table_keep_resident = 64 * KIB),
            ],
        ),
        (
            "max_memory_size",
            vec![
                tuned_with("1 MiB (tuned)", |_| {}),
                tuned_with("64 KiB", |s| s.max_memory_size = 64 * KIB),
                tuned_with("4 GiB", |s| s.max_memory_size = 1 << 32),
            ],
        ),
        (
            "memory_reservation / memory_guard_size",
            vec![
                tuned_with("4 GiB / 32 MiB (tuned)", |_| {}),
                tuned_with("1 MiB / 64 KiB", |s| {
                    s.memory_reservation = Some(1 << 20);
                    s.memory_guard_size = Some(64 << 10);
                }),
                tuned_with("1 MiB / 0", |s| {
                    s.memory_reservation = Some(1 << 20);
                    s.memory_guard_size = Some(0);
                }),
            ],
        ),
        (
            "total_* limits",
            vec![
                tuned_with("1000 (tuned)", |_| {}),
                tuned_with("100", |s| s.total = 100),
                tuned_with("4000", |s| s.total = 4000),
            ],
        ),
        (
            "max_unused_warm_slots",
            vec![
                tuned_with("100 (tuned)", |_| {}),
                tuned_with("0", |s| s.max_unused_warm_slots = 0),
                tuned_with("1000", |s| s.max_unused_warm_slots = 1000),
            ],
        ),
        (
            "memory_init_cow",
            vec![
                tuned_with("true (tuned)", |_| {}),
                tuned_with("false", |s| s.memory_init_cow = false),
                tuned_with("false, keep_resident 0", |s| {
                    s.memory_init_cow = false;
                    s.memory_keep_resident = 0;
                }),
                tuned_with("false, keep_resident 64 KiB", |s| {
                    s.memory_init_cow = false;
                    s.memory_keep_resident = 64 << 10;
                }),
            ],
        ),
        ("on-demand allocator + StackPool", on_demand_candidates()),
    ]
}

/// The on-demand allocator's memory settings, each with its async stacks from a `StackPool`.
fn on_demand_candidates() -> Vec<Candidate> {
    let pool = StackPool::new(STACK_SIZE);
    let with = |name: &str, change: fn(&mut Config)| {
        let pool = pool.clone();
        Candidate {
            name: name.to_string(),
            config: Box::new(move |zeroing| {
                let mut config = Config::new();
                config.async_stack_zeroing(zeroing);
                change(&mut config);
                pool.configure(&mut config)
                    .expect("a StackPool on this platform");
                config
            }),
        }
    };
    vec![
        with("defaults", |_| {}),
        with("memory_init_cow(false)", |c| {
            c.memory_init_cow(false);
        }),
        with("reservation 1 MiB, guard 64 KiB", |c| {
            c.memory_reservation(1 << 20).memory_guard_size(64 << 10);
        }),
        with("reservation 1 MiB, guard 64 KiB, no CoW", |c| {
            c.memory_reservation(1 << 20)
                .memory_guard_size(64 << 10)
                .memory_init_cow(false);
        }),
        // No reservation, no guard, no signal-based traps: wasmtime allocates the memory
        // with `malloc` and checks every access and the stack explicitly.
        with("malloc memory (no reservation, guard, signals)", |c| {
            common::malloc_memory(c);
        }),
    ]
}

/// A guest that only computes on its memory: `sum(n)` adds up the page's 16,384 words `n`
/// times. Every load is bounds-checked in code under `common::malloc_memory`, and none is
/// on a 4 GiB reservation with guards: this is what the fast store of the former costs the
/// guest's own work.
const COMPUTE_GUEST: &str = r#"(module
    (memory 1)
    (func (export "sum") (param $n i32) (result i32)
        (local $i i32) (local $acc i32)
        (loop $passes
            (local.set $i (i32.const 0))
            (loop $words
                (local.set $acc (i32.add (local.get $acc) (i32.load (local.get $i))))
                (local.set $i (i32.add (local.get $i) (i32.const 4)))
                (br_if $words (i32.lt_u (local.get $i) (i32.const 65536))))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br_if $passes (local.get $n)))
        (local.get $acc)))"#;

/// Times `sum(4)` (65,536 loads) on one instance, pooling allocator against malloc memory,
/// in interleaved rounds; prints ns per call and the ratio.
fn bounds_checks(rounds: usize) {
    use common::rounds::thread_cpu_time;
    use wasmtime::{Instance, Module, Store};

    let mut config = Config::new();
    let engines = [
        ("pooling, tuned", tuned_pooling().engine(false)),
        (
            "malloc memory",
            Engine::new(common::malloc_memory(&mut config)).unwrap(),
        ),
    ];
    let mut calls: Vec<_> = engines
        .iter()
        .map(|(name, engine)| {
            let module = Module::new(engine, COMPUTE_GUEST).unwrap();
            let mut store = Store::new(engine, ());
            let instance = Instance::new(&mut store, &module, &[]).unwrap();
            let sum = instance
                .get_typed_func::<i32, i32>(&mut store, "sum")
                .unwrap();
            assert_eq!(sum.call(&mut store, 4).unwrap(), 0);
            (*name, store, sum, Vec::new())
        })
        .collect();
    for _ in 0..rounds {
        for (_, store, sum, times) in calls.iter_mut() {
            let start = thread_cpu_time();
            for _ in 0..20 {
                std::hint::black_box(sum.call(&mut *store, 4).unwrap());
            }
            times.push((thread_cpu_time() - start).as_secs_f64() * 1e6 / 20.0);
        }
    }
    println!();
    println!("the guest's own code: 65,536 memory loads in a loop, one instance");
    print_header("memory", "pooling");
    let base = calls[0].3.clone();
    for (name, _, _, times) in &calls {
        print_row(name, &summarize(times, &base));
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let rounds = env_usize("ASYNC_WASM_BENCH_ROUNDS", 20).max(1);
    let batch = env_usize("ASYNC_WASM_BENCH_BATCH", 200).max(1);
    println!(
        "pooling allocator settings, {rounds} interleaved rounds of {batch} requests, \
         thread CPU time; PAGEMAP_SCAN available: {}",
        PoolingAllocationConfig::is_pagemap_scan_available()
    );
    for (group, candidates) in groups() {
        let mut variants = Vec::new();
        for candidate in &candidates {
            let engines = [false, true].map(|z| Engine::new(&(candidate.config)(z)).unwrap());
            for (guest, api, zeroing, case) in CASES {
                let engine = &engines[usize::from(zeroing)];
                let name = format!("{} | {case}", candidate.name);
                variants.push(Variant::new(&name, engine, api, guest, zeroing));
            }
        }
        let requests: Vec<_> = variants.iter().map(|v| v.request.clone()).collect();
        let samples = run_rounds(&requests, rounds, batch);
        println!();
        println!("{group}");
        print_header("value | case", "first");
        // Case by case, each value against the group's first on the same case.
        for case in 0..CASES.len() {
            for i in (case..variants.len()).step_by(CASES.len()) {
                print_row(&variants[i].name, &summarize(&samples[i], &samples[case]));
            }
        }
    }
    bounds_checks(rounds);
}
