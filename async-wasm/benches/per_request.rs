//! A store per request: new `Store`, instantiate, one call into an export that calls an
//! awaiting host function, drop the store. This is where the stack a store's async calls
//! run on is paid for, so it compares where that stack comes from:
//!
//! - `sync`: synchronous wasmtime (`Func::wrap`-style host, `instantiate` + `call`), which
//!   needs no second stack at all: the floor.
//! - `wasmtime_async_default`: wasmtime's async API with its default stacks, an `mmap` and a
//!   `munmap` per store.
//! - `wasmtime_async_pooled`: the same raw wasmtime calls on an engine drawing stacks from
//!   a `StackPool`, to tell the pool's gain from the wrappers' cost.
//! - `async_wasm_pooled`: this crate as its users write it: `func_wrap_async1`,
//!   `get_async().get1().call()`, on a `StackPool`.
//!
//! The async host functions are pending once before they answer, as a host function that
//! awaits I/O would be; the synchronous one cannot be.
//!
//! Run with `cargo bench -p async-wasm --bench per_request`.

#[allow(dead_code)]
mod common;

use std::hint::black_box;

use async_wasm::prelude::*;
use common::{block_on, default_engine, pooled_engine, yield_once};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wasmtime::{Caller, Engine, Linker, Module, Store};

/// The export `run` calls the host import once. `memory` adds one page of linear memory,
/// which the guest never touches: the cost measured is that of creating and freeing it.
fn guest(memory: bool) -> String {
    format!(
        r#"(module
            (import "env" "host" (func $host (param i32) (result i32)))
            {}
            (func (export "run") (param i32) (result i32) (call $host (local.get 0))))"#,
        if memory { "(memory 1)" } else { "" }
    )
}

fn sync_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker.func_wrap("env", "host", |x: i32| x + 1).unwrap();
    linker
}

fn wasmtime_async_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "host", |_: Caller<'_, ()>, (x,): (i32,)| {
            Box::new(async move {
                yield_once().await;
                x + 1
            })
        })
        .unwrap();
    linker
}

fn async_wasm_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1("env", "host", |_: Caller<'_, ()>, x: i32| {
            Box::new(async move {
                yield_once().await;
                x + 1
            })
        })
        .unwrap();
    linker
}

fn sync_request(linker: &Linker<()>, module: &Module) -> i32 {
    let mut store = Store::new(linker.engine(), ());
    let instance = linker.instantiate(&mut store, module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    run.call(&mut store, 1).unwrap()
}

async fn wasmtime_async_request(linker: &Linker<()>, module: &Module) -> i32 {
    let mut store = Store::new(linker.engine(), ());
    let instance = linker.instantiate_async(&mut store, module).await.unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    run.call_async(&mut store, 1).await.unwrap()
}

async fn async_wasm_request(linker: &Linker<()>, module: &Module) -> i32 {
    let mut store = Store::new(linker.engine(), ());
    let instance = linker.instantiate_async(&mut store, module).await.unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i32>(&store).unwrap();
    run.call(&mut store, 1).await.unwrap()
}

/// Benchmarks one way of serving a request, after checking once that it answers right, so
/// that a broken setup cannot pass for a fast one.
fn bench_request(c: &mut Criterion, variant: &str, guest_name: &str, request: impl Fn() -> i32) {
    assert_eq!(
        request(),
        2,
        "{variant} on {guest_name} answers host(1) = 2"
    );
    c.benchmark_group("per_request")
        .bench_function(BenchmarkId::new(variant, guest_name), |b| {
            b.iter(|| black_box(request()))
        });
}

fn per_request(c: &mut Criterion) {
    let default = default_engine();
    let pool = StackPool::new(common::STACK_SIZE);
    let pooled = pooled_engine(&pool);
    let (sync, raw_default) = (sync_linker(&default), wasmtime_async_linker(&default));
    let (raw_pooled, ours) = (wasmtime_async_linker(&pooled), async_wasm_linker(&pooled));

    for (guest_name, memory) in [("no_memory", false), ("memory_1_page", true)] {
        let wat = guest(memory);
        let on_default = Module::new(&default, &wat).unwrap();
        let on_pool = Module::new(&pooled, &wat).unwrap();

        bench_request(c, "sync", guest_name, || sync_request(&sync, &on_default));
        bench_request(c, "wasmtime_async_default", guest_name, || {
            block_on(wasmtime_async_request(&raw_default, &on_default))
        });
        bench_request(c, "wasmtime_async_pooled", guest_name, || {
            block_on(wasmtime_async_request(&raw_pooled, &on_pool))
        });
        bench_request(c, "async_wasm_pooled", guest_name, || {
            block_on(async_wasm_request(&ours, &on_pool))
        });
    }
    // Requests run one after another, so one stack served them all.
    assert_eq!(pool.stats().created, 1, "{:?}", pool.stats());
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = per_request
}
criterion_main!(benches);
