//! A store per request on a pool: stacks are reused, and all come back.

use async_wasm::prelude::*;
use tests::{pending, pooled_engine};
use wasmtime::{Caller, Engine, Linker, Module, Store};

const GUEST: &str = r#"(module
    (import "env" "lookup" (func $lookup (param i32) (result i64)))
    (memory 1)
    (func (export "handle") (param i32) (result i64)
        (i32.store (i32.const 0) (local.get 0))
        (i64.add (call $lookup (i32.load (i32.const 0))) (i64.const 1))))"#;

fn linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1("env", "lookup", |_: Caller<'_, ()>, key: i32| {
            Box::new(async move {
                pending(1).await;
                i64::from(key) * 100
            })
        })
        .unwrap();
    linker
}

async fn request(engine: &Engine, linker: &Linker<()>, module: &Module, key: i32) -> i64 {
    let mut store = Store::new(engine, ());
    let instance = linker.instantiate_async(&mut store, module).await.unwrap();
    let handle = instance.get_func(&mut store, "handle").unwrap();
    let handle = handle.get_async().get1::<i32, i64>(&store).unwrap();
    handle.call(&mut store, key).await.unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn sequential_requests_reuse_one_stack() {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let (linker, module) = (linker(&engine), Module::new(&engine, GUEST).unwrap());
    for key in 0..100 {
        assert_eq!(
            request(&engine, &linker, &module, key).await,
            key as i64 * 100 + 1
        );
    }
    let stats = pool.stats();
    assert_eq!((stats.created, stats.reused), (1, 99));
    assert_eq!((stats.in_use, stats.idle), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_many_threads_share_the_pool() {
    let pool = StackPool::new(1 << 20).max_idle(8);
    pool.prewarm(4).unwrap();
    let engine = pooled_engine(&pool);
    let (linker, module) = (linker(&engine), Module::new(&engine, GUEST).unwrap());
    let mut tasks = Vec::new();
    for key in 0..400 {
        let (engine, linker, module) = (engine.clone(), linker.clone(), module.clone());
        tasks.push(tokio::spawn(async move {
            request(&engine, &linker, &module, key).await
        }));
    }
    for (key, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), key as i64 * 100 + 1);
    }
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0);
    assert!(stats.idle <= 8);
    // Every request leased one stack: from the 4 prewarmed, a reused one, or a new one.
    assert_eq!(stats.created + stats.reused, 400 + 4, "{stats:?}");
    assert!(stats.reused >= 4, "{stats:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn zeroing_engines_work_on_a_shared_pool() {
    let pool = StackPool::new(1 << 20);
    let mut config = wasmtime::Config::new();
    config.async_stack_zeroing(true);
    pool.configure(&mut config);
    let zeroing = Engine::new(&config).unwrap();
    let plain = pooled_engine(&pool);
    for engine in [&zeroing, &plain, &zeroing] {
        let (linker, module) = (linker(engine), Module::new(engine, GUEST).unwrap());
        assert_eq!(request(engine, &linker, &module, 3).await, 301);
    }
    assert_eq!((pool.stats().created, pool.stats().reused), (1, 2));
}
