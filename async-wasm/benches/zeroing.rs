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
use common::{block_on, tuned_pooling, yield_once};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wasmtime::{Caller, Config, Engine, Linker, Module, Store};

const GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32) (call $host (local.get 0))))"#;

fn stack_pool_engine(pool: &StackPool, zeroed: bool) -> Engine {
    let mut config = Config::new();
    config.async_stack_zeroing(zeroed);
    pool.engine(&config).expect("a pooled engine")
}

fn linker(engine: &Engine) -> Linker<()> {
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

async fn request(linker: &Linker<()>, module: &Module) -> i32 {
    let mut store = Store::new(linker.engine(), ());
    let instance = linker.instantiate_async(&mut store, module).await.unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    run.call_async(&mut store, 1).await.unwrap()
}

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
    let engines = [
        ("stack_pool", stack_pool_engine(&pool, false)),
        ("stack_pool_zeroed", stack_pool_engine(&pool, true)),
        ("pooling", tuned_pooling().engine(false)),
        ("pooling_zeroed", tuned_pooling().engine(true)),
    ];
    let mut group = c.benchmark_group("zeroing");
    for (name, engine) in &engines {
        let (linker, module) = (linker(engine), Module::new(engine, GUEST).unwrap());
        assert_eq!(block_on(request(&linker, &module)), 2, "{name} answers");
        group.bench_function(BenchmarkId::new("per_request", name), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time();
                for _ in 0..iters {
                    black_box(block_on(request(&linker, &module)));
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
