//! The fixed cost of calling into wasm: an export that does nothing, called through
//!
//! - `wasmtime_sync`: `TypedFunc::call`, no fiber at all: the floor.
//! - `wasmtime_async`: `TypedFunc::call_async`, which runs the call on a fiber.
//! - `async_wasm`: `get_async().get0()` once, then its `call` for every call.
//!
//! One store and one pooled engine serve every row; the store keeps its fiber stack between
//! calls, so no row pays for a stack.
//!
//! Run with `cargo bench -p async-wasm --bench call_overhead`.

#[allow(dead_code)]
mod common;

use async_wasm::prelude::*;
use common::{block_on, pooled_engine};
use criterion::{Criterion, criterion_group, criterion_main};
use wasmtime::{Instance, Module, Store};

const NOP_GUEST: &str = r#"(module (func (export "nop")))"#;

fn call_overhead(c: &mut Criterion) {
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, NOP_GUEST).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = block_on(Instance::new_async(&mut store, &module, &[])).unwrap();
    let typed = instance
        .get_typed_func::<(), ()>(&mut store, "nop")
        .unwrap();
    let nop = instance.get_func(&mut store, "nop").unwrap();
    let handle = nop.get_async().get0::<()>(&store).unwrap();

    let mut group = c.benchmark_group("call_overhead");
    group.bench_function("wasmtime_sync", |b| {
        b.iter(|| typed.call(&mut store, ()).unwrap())
    });
    group.bench_function("wasmtime_async", |b| {
        b.iter(|| block_on(typed.call_async(&mut store, ())).unwrap())
    });
    group.bench_function("async_wasm", |b| {
        b.iter(|| block_on(handle.call(&mut store)).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = call_overhead
}
criterion_main!(benches);
