//! The host-call variants of `benches/host_calls.rs`, side by side in interleaved rounds:
//! every round runs every variant once, a batch of `run(1000)` export calls each, timed with
//! the thread's CPU time. Printed per shape: µs per thousand host calls (so ns per call),
//! and the ratio to wasmtime's own `func_wrap_async` + `call_async`, as a ratio of medians
//! and as the median of per-round ratios. These are the wrappers' figures the README quotes.
//!
//! Run with `cargo bench -p async-wasm --bench host_calls_rounds`;
//! `ASYNC_WASM_BENCH_ROUNDS` (default 40) and `ASYNC_WASM_BENCH_BATCH` (export calls per
//! variant per round, default 20) change the run.

#[allow(dead_code)]
mod common;

use async_wasm::StackPool;
use common::host_calls::{Shape, variants};
use common::pooled_engine;
use common::rounds::{env_usize, print_header, print_row, run_rounds, summarize};

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let rounds = env_usize("ASYNC_WASM_BENCH_ROUNDS", 40).max(1);
    let batch = env_usize("ASYNC_WASM_BENCH_BATCH", 20).max(1);
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let variants: Vec<_> = Shape::ALL
        .into_iter()
        .flat_map(|shape| {
            variants(&engine, shape)
                .into_iter()
                .map(move |(name, request)| (shape, name, request))
        })
        .collect();
    println!(
        "host calls, {} variants, {rounds} interleaved rounds of {batch} x 1000 host calls each, \
         thread CPU time; µs per 1000 calls",
        variants.len()
    );
    let requests: Vec<_> = variants.iter().map(|(_, _, r)| r.clone()).collect();
    let samples = run_rounds(&requests, rounds, batch);
    for shape in Shape::ALL {
        println!();
        println!("{}", shape.name());
        print_header("variant", "wasmtime");
        let baseline = variants
            .iter()
            .position(|(s, name, _)| *s == shape && *name == "wasmtime")
            .expect("every shape has wasmtime's own variant");
        for (i, (s, name, _)) in variants.iter().enumerate() {
            if *s == shape {
                print_row(name, &summarize(&samples[i], &samples[baseline]));
            }
        }
    }
}
