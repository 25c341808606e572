//! The host-call variants of `benches/host_calls.rs`, side by side in interleaved rounds:
//! every round runs every variant once, a batch of `run(1000)` export calls each, timed with
//! the thread's CPU time. Printed per shape: µs per request of a thousand host calls (so ns
//! per call), and the ratio to wasmtime's own `func_wrap_async` + `call_async`, as a ratio of
//! medians and as the median of per-round ratios. These are the wrappers' figures the
//! README quotes.
//!
//! Run with `cargo bench -p async-wasm --bench host_calls_rounds`;
//! `ASYNC_WASM_BENCH_ROUNDS` (default 40) and `ASYNC_WASM_BENCH_BATCH` (export calls per
//! variant per round, default 20) change the run.

#[allow(dead_code)]
mod common;

use async_wasm::StackPool;
use common::host_calls::{Shape, variants};
use common::pooled_engine;
use common::rounds::Groups;

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let variants = Shape::ALL
        .into_iter()
        .flat_map(|shape| {
            variants(&engine, shape)
                .into_iter()
                .map(move |(name, request)| (shape.name().to_string(), name, request))
        })
        .collect();
    Groups { variants }.run("host calls, 1000 per request", 20);
}
