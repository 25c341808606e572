//! What the host-call benchmarks share: a wasm loop that calls the host `CALLS` times per
//! export call, the host function in each way it can be registered, and the variants, each
//! a store and instance kept for every iteration.

use std::sync::{Arc, Mutex};

use async_wasm::Local;
use async_wasm::prelude::*;
use wasmtime::{Caller, Engine, Linker, Module, Store};

use super::{BlockingRequest, block_on, yield_once};

/// Host calls per export call: enough that the export call's own cost (about a tenth of a
/// microsecond) is lost in the noise of a thousand host calls.
pub const CALLS: i32 = 1000;

/// `run(n)` calls `host(acc)` n times, threading the result through, and returns it: with
/// `host(x) = x + 1` it returns n, which checks that every call happened.
pub const LOOP_GUEST: &str = r#"(module
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Ready,
    YieldOnce,
}

impl Shape {
    pub fn name(self) -> &'static str {
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

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::Ready, Shape::YieldOnce];
}

/// A store with `linker`'s instance of the loop guest, kept for every iteration.
fn instantiate<T: Send + 'static>(
    linker: &Linker<T>,
    module: &Module,
    data: T,
) -> (Store<T>, wasmtime::Instance) {
    let mut store = Store::new(linker.engine(), data);
    let instance = block_on(linker.instantiate_async(&mut store, module)).unwrap();
    (store, instance)
}

/// `run(CALLS)` through async-wasm's `get_async().get1().call()`, on a store of its own.
fn through_async_wasm<T: Send + 'static>(
    linker: &Linker<T>,
    module: &Module,
    data: T,
) -> BlockingRequest {
    let (mut store, instance) = instantiate(linker, module, data);
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i32>(&store).unwrap();
    let store = Mutex::new(store);
    Arc::new(move || block_on(run.call(&mut *store.lock().unwrap(), CALLS)).unwrap())
}

/// The variants for `shape`, wasmtime's own first (the baseline), each checked once.
///
/// - `wasmtime`: `Linker::func_wrap_async`, export called with `TypedFunc::call_async`.
/// - `async_wasm_closure`: `LinkerExt::func_wrap_async1` with a closure.
/// - `async_wasm_async_host`: `func_wrap_async1` with an `#[async_host]` fn.
/// - `async_wasm_local`: the same with `#[async_host(local)]` on a store of `Local<()>`
///   data: the thread check on every poll and the future's own allocation.
///
/// The async-wasm variants call the export through `get_async().get1().call()`. (A store
/// lives in a `Mutex` so that a variant is `Sync`: one uncontended lock per thousand host
/// calls.)
pub fn variants(engine: &Engine, shape: Shape) -> Vec<(&'static str, BlockingRequest)> {
    let module = Module::new(engine, LOOP_GUEST).unwrap();
    let wasmtime: BlockingRequest = {
        let (mut store, instance) = instantiate(&wasmtime_linker(engine, shape), &module, ());
        let run = instance
            .get_typed_func::<(i32,), i32>(&mut store, "run")
            .unwrap();
        let store = Mutex::new(store);
        Arc::new(move || block_on(run.call_async(&mut *store.lock().unwrap(), (CALLS,))).unwrap())
    };
    let variants = vec![
        ("wasmtime", wasmtime),
        (
            "async_wasm_closure",
            through_async_wasm(&closure_linker(engine, shape), &module, ()),
        ),
        (
            "async_wasm_async_host",
            through_async_wasm(&async_host_linker(engine, shape), &module, ()),
        ),
        (
            "async_wasm_local",
            through_async_wasm(&local_linker(engine, shape), &module, Local::new(())),
        ),
    ];
    for (name, request) in &variants {
        assert_eq!(request(), CALLS, "{name} made every host call");
    }
    variants
}
