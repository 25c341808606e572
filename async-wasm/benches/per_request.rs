//! A store per request: new `Store`, instantiate, one call into an export that calls a host
//! function, drop the store. This is where a store's instance, memory and async stack are
//! paid for, so it compares where they come from, side by side, against what an expert
//! would otherwise run: wasmtime's pooling instance allocator, tuned
//! (`common::tuned_pooling`, with the reason for each setting).
//!
//! Each pooling variant has its own engine, so its own pool (see
//! `common::per_request_variants`). Each request does what an expert does per request: the `Linker` resolves the imports once
//! (`Linker::instantiate_pre`), and each request calls `InstancePre::instantiate_async` (or
//! `instantiate`) and finds the export by its precomputed index
//! (`Module::get_export_index`). The async host function is pending once before it answers,
//! as one that awaits I/O would be; the synchronous one cannot be.
//!
//! Variants (ids `per_request/<guest>[/zeroed]/<variant>`):
//!
//! - `sync_pooling`: synchronous wasmtime on the tuned pooling allocator; the baseline.
//! - `sync_on_demand`: synchronous wasmtime on the default on-demand allocator.
//! - `async_default_stacks`: wasmtime's async API, on-demand allocator and its own stacks
//!   (an `mmap` and `munmap` of a 2 MiB stack per store).
//! - `async_stackpool_raw`: raw wasmtime async calls, on-demand allocator, stacks from a
//!   `StackPool` (`StackPool::engine`).
//! - `async_stackpool_async_wasm`: the same through async-wasm's API:
//!   `LinkerExt::func_wrap_async1` and `get_async().get1().call()`.
//! - `async_pooling_raw`: raw wasmtime async calls on the tuned pooling allocator, with its
//!   own pooled stacks (wasmtime 48 gives a `StackPool` only to the on-demand allocator).
//! - `async_pooling_async_wasm`: async-wasm's API on the tuned pooling allocator.
//! - `async_pooling_linker`: as `async_pooling_raw`, but `Linker::instantiate_async` per
//!   request, which resolves imports by name every time: what skipping `InstancePre` costs.
//! - `sync_malloc_memory`, `async_stackpool_async_wasm_malloc_memory`: the on-demand
//!   allocator with `common::malloc_memory` (no reservation, no guard, no signal-based
//!   traps: memories come from `malloc`, accesses are bounds-checked in code), synchronous
//!   and through async-wasm on a `StackPool`.
//!
//! Guests: `no_memory`, and `memory_1_page`, one page of memory with a data segment the guest
//! reads. Each set runs without and with `Config::async_stack_zeroing` (`/zeroed`: the
//! synchronous variants use no async stack, so they are not repeated).
//!
//! Every variant checks its answer once before it is measured. Criterion runs one variant
//! after another; `benches/per_request_rounds.rs` runs them interleaved, which is what the
//! README's ratios quote.
//!
//! Run with `cargo bench -p async-wasm --bench per_request`.

#[allow(dead_code)]
mod common;

use std::collections::HashSet;
use std::hint::black_box;

use common::per_request_variants;
use criterion::{Criterion, criterion_group, criterion_main};

fn per_request(c: &mut Criterion) {
    let mut seen = HashSet::new();
    let mut group = c.benchmark_group("per_request");
    for zeroing in [false, true] {
        for variant in per_request_variants(zeroing) {
            // The zeroed set repeats the synchronous baseline, which zeroing does not change.
            if !seen.insert(variant.id()) {
                continue;
            }
            let request = variant.request.clone();
            group.bench_function(variant.id(), |b| b.iter(|| black_box(request())));
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = per_request
}
criterion_main!(benches);
