//! The data variants of `benches/data.rs` (`#[async_host]` against the same call by hand on
//! raw wasmtime, a string in and bytes out), side by side in interleaved rounds, thread CPU
//! time: µs per export call of 100 host calls, so ns per host call ×10, and the ratio to the
//! hand-written call. These are the figures the README quotes.
//!
//! Run with `cargo bench -p async-wasm --bench data_rounds`; `ASYNC_WASM_BENCH_ROUNDS`
//! (default 40) and `ASYNC_WASM_BENCH_BATCH` (export calls per variant per round, default
//! 20) change the run.

#[allow(dead_code)]
mod common;

use async_wasm::StackPool;
use common::data::{LENGTHS, variants};
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
    let variants: Vec<_> = LENGTHS
        .into_iter()
        .flat_map(|len| {
            variants(&engine, len)
                .into_iter()
                .map(move |(name, request)| (len, name, request))
        })
        .collect();
    println!(
        "data through a host call, {} variants, {rounds} interleaved rounds of {batch} x 100 \
         host calls each, thread CPU time; µs per 100 calls",
        variants.len()
    );
    let requests: Vec<_> = variants.iter().map(|(_, _, r)| r.clone()).collect();
    let samples = run_rounds(&requests, rounds, batch);
    for len in LENGTHS {
        println!();
        println!("{len} bytes in and out");
        print_header("variant", "hand_written");
        let baseline = variants
            .iter()
            .position(|(l, name, _)| *l == len && *name == "hand_written")
            .expect("every length has the hand-written variant");
        for (i, (l, name, _)) in variants.iter().enumerate() {
            if *l == len {
                print_row(name, &summarize(&samples[i], &samples[baseline]));
            }
        }
    }
}
