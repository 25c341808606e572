//! What `Config::async_stack_zeroing(true)` costs a store per request, on a `StackPool` and
//! on wasmtime's pooling allocator, side by side.
//!
//! A request is a new `Store`, instantiation, and one call of an export into a host
//! function that is pending once, all through raw wasmtime calls, so the only difference
//! between the variants is where the store's stack comes from and how it is zeroed:
//!
//! - `stack_pool` / `stack_pool_zeroed`: the on-demand allocator with a `StackPool` and its
//!   defaults (`keep_resident` 8 KiB, `decommit_batch` 32; `ASYNC_WASM_BENCH_KEEP_RESIDENT`
//!   and `ASYNC_WASM_BENCH_DECOMMIT_BATCH` change them).
//! - `pooling` / `pooling_zeroed`: wasmtime's pooling allocator with its own stacks, tuned
//!   as an expert would for a store per request (`common::tuned_pooling`:
//!   `async_stack_keep_resident` 8 KiB, `decommit_batch_size(32)`).
//!
//! Times are the benchmark thread's CPU time (user and kernel, so the `madvise` calls that
//! zeroing makes count), which other processes on a shared machine do not inflate.
//!
//! Run with `cargo bench -p async-wasm --bench zeroing`.

#[allow(dead_code)]
mod common;

use std::hint::black_box;

use async_wasm::StackPool;
use common::rounds::{env_usize, thread_cpu_time};
use common::{Allocator, Api, Guest, Variant, tuned_pooling};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn zeroing(c: &mut Criterion) {
    let defaults = StackPool::new(common::STACK_SIZE);
    let pool = StackPool::builder(common::STACK_SIZE)
        .keep_resident(env_usize(
            "ASYNC_WASM_BENCH_KEEP_RESIDENT",
            defaults.keep_resident(),
        ))
        .decommit_batch(env_usize(
            "ASYNC_WASM_BENCH_DECOMMIT_BATCH",
            defaults.decommit_batch(),
        ))
        .build()
        .unwrap();
    let stack_pool = Allocator::StackPool(pool);
    let pooling = Allocator::Pooling(tuned_pooling());
    let variants = [
        ("stack_pool", &stack_pool, false),
        ("stack_pool_zeroed", &stack_pool, true),
        ("pooling", &pooling, false),
        ("pooling_zeroed", &pooling, true),
    ]
    // A request as wasmtime's own async API makes it, the host import pending once;
    // `Variant::new` checks its answer.
    .map(|(name, allocator, zeroed)| {
        let engine = allocator.engine(zeroed);
        Variant::new(
            name,
            &engine,
            Api::WasmtimeAsyncLinker,
            Guest::NoMemory,
            zeroed,
        )
    });
    let mut group = c.benchmark_group("zeroing");
    for variant in &variants {
        group.bench_function(BenchmarkId::new("per_request", &variant.name), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time();
                for _ in 0..iters {
                    black_box((variant.request)());
                }
                thread_cpu_time() - start
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = zeroing
}
criterion_main!(benches);
