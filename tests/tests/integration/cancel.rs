//! Cancellation: a call future dropped while its guest is suspended.

use async_wasm::prelude::*;
use tests::{DropCounter, poll_once, pooled_engine};
use wasmtime::{Caller, Engine, Linker, Module, Store};

const GUEST: &str = r#"(module
    (import "env" "wait" (func $wait (param i32) (result i32)))
    (global $calls (mut i32) (i32.const 0))
    (func (export "run") (param i32) (result i32)
        (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
        (call $wait (local.get 0)))
    (func (export "calls") (result i32) (global.get $calls)))"#;

/// The store's data: whether the host should wait forever, and what it drops.
struct State {
    wait_forever: bool,
    drops: DropCounter,
}

/// `env.wait` returns its argument plus `add`, after waiting forever if the store says so,
/// and holds a drop guard while it runs.
fn linker(engine: &Engine, add: i32) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap_async1("env", "wait", move |caller: Caller<'_, State>, x: i32| {
        let guard = caller.data().drops.guard();
        let forever = caller.data().wait_forever;
        Box::new(async move {
            let _guard = guard;
            if forever {
                std::future::pending::<()>().await;
            }
            x + add
        })
    })?;
    Ok(linker)
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_a_suspended_call_runs_destructors_and_keeps_the_store() -> wasmtime::Result<()> {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, GUEST)?;
    let linker = linker(&engine, 1)?;
    let drops = DropCounter::default();
    let mut store = Store::new(
        &engine,
        State {
            wait_forever: true,
            drops: drops.clone(),
        },
    );
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance
        .get_func(&mut store, "run")
        .unwrap()
        .get_async()
        .get1::<i32, i32>(&store)?;

    {
        let mut call = Box::pin(run.call(&mut store, 1));
        assert!(poll_once(&mut call).is_pending());
        assert_eq!(
            drops.dropped(),
            0,
            "the host future is alive while suspended"
        );
        assert_eq!(pool.stats().in_use, 1);
    }
    assert_eq!(
        drops.dropped(),
        1,
        "dropping the call drops the host future once"
    );

    // The store is still usable: the guest's state survived and the next call completes.
    store.data_mut().wait_forever = false;
    assert_eq!(run.call(&mut store, 41).await?, 42);
    let calls = instance.get_func(&mut store, "calls").unwrap();
    assert_eq!(
        calls
            .get_async()
            .get0::<i32>(&store)?
            .call(&mut store)
            .await?,
        2
    );
    assert_eq!(drops.dropped(), 2);

    drop(store);
    let stats = pool.stats();
    assert_eq!(
        (stats.in_use, stats.idle),
        (0, 1),
        "the pool has its stack back"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_cancel_calls_and_the_pool_gets_every_stack_back() -> wasmtime::Result<()> {
    let pool = StackPool::builder(1 << 20).max_idle(4).build().unwrap();
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, GUEST)?;
    let linker = linker(&engine, 0)?;
    let drops = DropCounter::default();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (engine, linker, module, drops) = (
            engine.clone(),
            linker.clone(),
            module.clone(),
            drops.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut store = Store::new(
                &engine,
                State {
                    wait_forever: i % 2 == 0,
                    drops,
                },
            );
            let instance = linker.instantiate_async(&mut store, &module).await?;
            let run = instance.get_func(&mut store, "run").unwrap();
            let run = run.get_async().get1::<i32, i32>(&store)?;
            let timeout = std::time::Duration::from_millis(20);
            wasmtime::Result::<_>::Ok(tokio::time::timeout(timeout, run.call(&mut store, i)).await)
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap()? {
            Ok(v) => assert_eq!((i % 2, v?), (1, i as i32)),
            Err(_elapsed) => assert_eq!(i % 2, 0, "only the waiting guests time out"),
        }
    }
    assert_eq!(drops.dropped(), 32);
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0);
    assert!(stats.idle <= 4);
    Ok(())
}
