//! The cost of one async host call, from a wasm loop that calls the host `CALLS` times per
//! export call, and the store and instance reused: what remains is the host call itself.
//!
//! Each host future comes in two shapes: `ready` (answers on its first poll: no switch off
//! the guest's stack) and `yield_once` (pending once, waking itself: the guest is suspended
//! and resumed once per host call). The variants, on one pooled engine, are described in
//! `common/host_calls.rs`: wasmtime's own `func_wrap_async` and `call_async`, and
//! async-wasm's closure, `#[async_host]` and `#[async_host(local)]` registrations.
//!
//! Criterion measures one variant after another; `benches/host_calls_rounds.rs` measures
//! the same variants in interleaved rounds, which the README's ratios quote.
//!
//! Run with `cargo bench -p async-wasm --bench host_calls`.

#[allow(dead_code)]
mod common;

use std::hint::black_box;

use async_wasm::prelude::*;
use common::host_calls::{CALLS, Shape, variants};
use common::pooled_engine;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn host_calls(c: &mut Criterion) {
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let mut group = c.benchmark_group("host_calls");
    // Reported per host call, the unit the 5% target is about.
    group.throughput(Throughput::Elements(CALLS as u64));
    for shape in Shape::ALL {
        for (variant, request) in variants(&engine, shape) {
            group.bench_function(BenchmarkId::new(variant, shape.name()), |b| {
                b.iter(|| black_box(request()))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = host_calls
}
criterion_main!(benches);
