//! The cost of one async host call, from a wasm loop that calls the host `CALLS` times per
//! export call, and the store and instance reused: what remains is the host call itself.
//!
//! Each host future comes in two shapes: `ready` (answers on its first poll: no switch off
//! the guest's stack) and `yield_once` (pending once, waking itself: the guest is suspended
//! and resumed once per host call). Each is registered three ways, on one pooled engine:
//!
//! - `wasmtime`: `Linker::func_wrap_async`, export called with `TypedFunc::call_async`.
//! - `async_wasm_closure`: `LinkerExt::func_wrap_async1` with a closure.
//! - `async_wasm_async_host`: `func_wrap_async1` with an `#[async_host]` fn.
//! - `async_wasm_local`: the same with `#[async_host(local)]` on a store of `Local<()>`
//!   data: the thread check on every poll and the future's own allocation.
//!
//! Both async-wasm variants call the export through `get_async().get1().call()`.
//!
//! Run with `cargo bench -p async-wasm --bench host_calls`.

#[allow(dead_code)]
mod common;

use std::hint::black_box;

use async_wasm::Local;
use async_wasm::prelude::*;
use common::{block_on, pooled_engine, yield_once};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmtime::{Caller, Engine, Linker, Module, Store};

/// Host calls per export call: enough that the export call's own cost (about a tenth of a
/// microsecond) is lost in the noise of a thousand host calls.
const CALLS: i32 = 1000;

/// `run(n)` calls `host(acc)` n times, threading the result through, and returns it: with
/// `host(x) = x + 1` it returns n, which checks that every call happened.
const LOOP_GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param $n i32) (result i32)
        (local $acc i32)
        (block $done
            (loop $next
                (br_if $done (i32.eqz (local.get $n)))
                (local.set $acc (call $host (local.get $acc)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $next)))
        (local.get $acc)))"#;

/// What the host function's future does before it answers.
#[derive(Clone, Copy)]
enum Shape {
    Ready,
    YieldOnce,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Ready => "ready",
            Shape::YieldOnce => "yield_once",
        }
    }
}

#[async_host]
async fn add_one(_caller: Caller<'_, ()>, x: i32) -> i32 {
    x + 1
}

#[async_host]
async fn add_one_after_yield(_caller: Caller<'_, ()>, x: i32) -> i32 {
    yield_once().await;
    x + 1
}

#[async_host(local)]
async fn add_one_local(_caller: Caller<'_, Local<()>>, x: i32) -> i32 {
    x + 1
}

#[async_host(local)]
async fn add_one_after_yield_local(_caller: Caller<'_, Local<()>>, x: i32) -> i32 {
    yield_once().await;
    x + 1
}

fn local_linker(engine: &Engine, shape: Shape) -> Linker<Local<()>> {
    let mut linker = Linker::new(engine);
    match shape {
        Shape::Ready => linker.func_wrap_async1("env", "host", add_one_local),
        Shape::YieldOnce => linker.func_wrap_async1("env", "host", add_one_after_yield_local),
    }
    .unwrap();
    linker
}

fn wasmtime_linker(engine: &Engine, shape: Shape) -> Linker<()> {
    let mut linker = Linker::new(engine);
    match shape {
        Shape::Ready => linker.func_wrap_async("env", "host", |_: Caller<'_, ()>, (x,): (i32,)| {
            Box::new(async move { x + 1 })
        }),
        Shape::YieldOnce => {
            linker.func_wrap_async("env", "host", |_: Caller<'_, ()>, (x,): (i32,)| {
                Box::new(async move {
                    yield_once().await;
                    x + 1
                })
            })
        }
    }
    .unwrap();
    linker
}

fn closure_linker(engine: &Engine, shape: Shape) -> Linker<()> {
    let mut linker = Linker::new(engine);
    match shape {
        Shape::Ready => linker.func_wrap_async1("env", "host", |_: Caller<'_, ()>, x: i32| {
            Box::new(async move { x + 1 })
        }),
        Shape::YieldOnce => linker.func_wrap_async1("env", "host", |_: Caller<'_, ()>, x: i32| {
            Box::new(async move {
                yield_once().await;
                x + 1
            })
        }),
    }
    .unwrap();
    linker
}

fn async_host_linker(engine: &Engine, shape: Shape) -> Linker<()> {
    let mut linker = Linker::new(engine);
    match shape {
        Shape::Ready => linker.func_wrap_async1("env", "host", add_one),
        Shape::YieldOnce => linker.func_wrap_async1("env", "host", add_one_after_yield),
    }
    .unwrap();
    linker
}

/// A store with `linker`'s instance of the loop guest, kept for every iteration.
fn instantiate(linker: &Linker<()>, module: &Module) -> (Store<()>, wasmtime::Instance) {
    let mut store = Store::new(linker.engine(), ());
    let instance = block_on(linker.instantiate_async(&mut store, module)).unwrap();
    (store, instance)
}

/// Benchmarks `run(CALLS)` through `call`, after checking once that it made every call.
fn bench_loop(
    c: &mut Criterion,
    variant: &str,
    shape: Shape,
    mut call: impl FnMut() -> wasmtime::Result<i32>,
) {
    assert_eq!(call().unwrap(), CALLS, "{variant} made every host call");
    let mut group = c.benchmark_group("host_calls");
    // Reported per host call, the unit the 5% target is about.
    group.throughput(Throughput::Elements(CALLS as u64));
    group.bench_function(BenchmarkId::new(variant, shape.name()), |b| {
        b.iter(|| black_box(call().unwrap()))
    });
}

fn host_calls(c: &mut Criterion) {
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, LOOP_GUEST).unwrap();

    for shape in [Shape::Ready, Shape::YieldOnce] {
        // Each variant's store is dropped before the next one runs, so that every variant
        // is measured with the same live state: with the first store kept alive, the later
        // variants measured up to 7% slower than when each ran in a process of its own.
        {
            let (mut store, instance) = instantiate(&wasmtime_linker(&engine, shape), &module);
            let run = instance
                .get_typed_func::<(i32,), i32>(&mut store, "run")
                .unwrap();
            bench_loop(c, "wasmtime", shape, || {
                block_on(run.call_async(&mut store, (CALLS,)))
            });
        }

        let async_wasm_variants = [
            ("async_wasm_closure", closure_linker(&engine, shape)),
            ("async_wasm_async_host", async_host_linker(&engine, shape)),
        ];
        for (variant, linker) in async_wasm_variants {
            let (mut store, instance) = instantiate(&linker, &module);
            let run = instance.get_func(&mut store, "run").unwrap();
            let run = run.get_async().get1::<i32, i32>(&store).unwrap();
            bench_loop(c, variant, shape, || block_on(run.call(&mut store, CALLS)));
        }

        {
            let linker = local_linker(&engine, shape);
            let mut store = Store::new(&engine, Local::new(()));
            let instance = block_on(linker.instantiate_async(&mut store, &module)).unwrap();
            let run = instance.get_func(&mut store, "run").unwrap();
            let run = run.get_async().get1::<i32, i32>(&store).unwrap();
            bench_loop(c, "async_wasm_local", shape, || {
                block_on(run.call(&mut store, CALLS))
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
