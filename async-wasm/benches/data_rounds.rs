//! The data variants of `benches/data.rs` (`#[async_host]` against the same call by hand on
//! raw wasmtime, a string in and bytes out), side by side in interleaved rounds, thread CPU
//! time: µs per request of 100 host calls, so ns per host call ×10, and the ratio to the
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
use common::rounds::Groups;

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let variants = LENGTHS
        .into_iter()
        .flat_map(|len| {
            variants(&engine, len)
                .into_iter()
                .map(move |(name, request)| (format!("{len} bytes in and out"), name, request))
        })
        .collect();
    Groups { variants }.run("data through a host call, 100 calls per request", 20);
}
