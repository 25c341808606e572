//! The cost of moving data through an async host call: a string in, bytes out, through
//! `#[async_host]` against the same call written by hand on raw wasmtime
//! (`Linker::func_wrap_async`, `Memory::read`, the guest's `cabi_realloc` called with
//! `TypedFunc::call_async`, `Memory::write`), at 16 B, 1 KiB and 64 KiB.
//!
//! The guest calls the import `CALLS` times per export call, from a loop that resets its
//! bump allocator each time, so what is measured is the host call with its copies, the
//! UTF-8 check, and the nested call into the guest's allocator. Both variants run on one
//! engine with a `StackPool` (the allocator call takes a second stack from it). The set-up
//! is in `common/data.rs`; `benches/data_rounds.rs` measures the same in interleaved
//! rounds, which the README's ratios quote.
//!
//! Run with `cargo bench -p async-wasm --bench data`.

#[allow(dead_code)]
mod common;

use std::hint::black_box;

use async_wasm::prelude::*;
use common::data::{CALLS, LENGTHS, variants};
use common::pooled_engine;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn data(c: &mut Criterion) {
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let mut group = c.benchmark_group("data");
    group.throughput(Throughput::Elements(CALLS as u64));
    for len in LENGTHS {
        for (variant, request) in variants(&engine, len) {
            group.bench_function(BenchmarkId::new(variant, len), |b| {
                b.iter(|| black_box(request()))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = data
}
criterion_main!(benches);
