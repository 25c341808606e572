//! A store per request on N OS threads at once, all drawing stacks from one shared pool:
//! does the pool's lock slow requests down as threads are added? Compared with wasmtime's
//! pooling allocator, which takes locks of its own on every instantiation and stack.
//!
//! Each thread runs its own loop of requests (new `Store`, instantiate, one call into a host
//! function pending once, drop the store) on its own executor; criterion's time per
//! iteration is the longest time a thread took for its `iters` requests, divided by
//! `iters`: the time per request as each thread sees it, and its throughput in requests per
//! second per thread (`thrpt`). Flat across thread counts means no contention, on a machine
//! with a core per thread and nothing else running.
//!
//! `ASYNC_WASM_BENCH_THREADS` lists the thread counts (default `1,2`):
//! `ASYNC_WASM_BENCH_THREADS=1,2,4 cargo bench -p async-wasm --bench contention`.

#[allow(dead_code)]
mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use async_wasm::StackPool;
use common::{block_on, yield_once};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmtime::{
    Caller, Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig,
    Store,
};

const GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32) (call $host (local.get 0))))"#;

fn thread_counts() -> Vec<usize> {
    std::env::var("ASYNC_WASM_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("ASYNC_WASM_BENCH_THREADS: numbers, comma-separated")
        })
        .collect()
}

/// wasmtime's pooling allocator, tuned for a store per request as in `zeroing.rs`.
fn pooling_engine() -> Engine {
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_memories(100)
        .total_tables(100)
        .total_core_instances(100)
        .total_stacks(100)
        .max_memory_size(1 << 20)
        .linear_memory_keep_resident(0)
        .decommit_batch_size(32)
        .async_stack_keep_resident(8 << 10);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
        .async_stack_size(common::STACK_SIZE);
    Engine::new(&config).expect("a pooling engine")
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

/// Runs `iters` requests on each of `threads` threads started together; the longest time a
/// thread took.
fn run_threads(threads: usize, iters: u64, linker: &Linker<()>, module: &Module) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        assert_eq!(block_on(request(linker, module)), 2);
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}

fn contention(c: &mut Criterion) {
    let pool = StackPool::new(common::STACK_SIZE);
    let engines = [
        (
            "stack_pool",
            pool.engine(&Config::new()).expect("a pooled engine"),
        ),
        ("pooling", pooling_engine()),
    ];
    let mut group = c.benchmark_group("contention");
    group.throughput(Throughput::Elements(1));
    for threads in thread_counts() {
        for (name, engine) in &engines {
            let (linker, module) = (linker(engine), Module::new(engine, GUEST).unwrap());
            group.bench_function(BenchmarkId::new(*name, format!("{threads}_threads")), |b| {
                b.iter_custom(|iters| run_threads(threads, iters, &linker, &module))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = contention
}
criterion_main!(benches);
