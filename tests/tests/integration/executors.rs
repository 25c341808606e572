//! The same scenarios on every executor: tokio current-thread and multi-thread, futures'
//! `LocalPool`, and async-executor. The host futures here use no runtime-specific timers or
//! channels, so each executor drives them on its own.

use std::future::Future;

use async_wasm::prelude::*;
use futures::channel::oneshot;
use futures::stream::{FuturesUnordered, StreamExt};
use tests::{DropCounter, pending, pooled_engine};
use wasmtime::{Caller, Engine, Linker, Module, Store, Trap};

/// `env.host(x)`: the store's `Step` decides what it does. `run(x)` calls it and adds one;
/// `square(x)` is pure wasm for host functions to call back into.
const GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32)
        (local i32)
        (local.set 1 (call $host (local.get 0)))
        (if (i32.eq (local.get 1) (i32.const -1)) (then unreachable))
        (i32.add (local.get 1) (i32.const 1)))
    (func (export "square") (param i32) (result i32) (i32.mul (local.get 0) (local.get 0))))"#;

/// What `env.host` does on its next call.
enum Step {
    /// Pending this many times, then returns x * 10.
    Pending(usize),
    /// Waits for the channel, then returns x plus what came through it.
    Channel(Option<oneshot::Receiver<i32>>),
    /// Never finishes; holds a guard to show it was dropped.
    Forever(DropCounter),
    /// Returns -1, on which the guest traps.
    Trap,
    /// Returns an error.
    Fail,
    /// Calls the guest's `square` through the caller.
    Callback,
}

fn linker(engine: &Engine) -> Linker<Step> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1("env", "host", |mut caller: Caller<'_, Step>, x: i32| {
            Box::new(async move {
                match caller.data_mut() {
                    Step::Pending(times) => {
                        pending(*times).await;
                        Ok(x * 10)
                    }
                    Step::Channel(rx) => {
                        let rx = rx.take().expect("one call per channel");
                        Ok(x + rx.await?)
                    }
                    Step::Forever(drops) => {
                        let _guard = drops.guard();
                        std::future::pending::<()>().await;
                        unreachable!()
                    }
                    Step::Trap => Ok(-1),
                    Step::Fail => Err(wasmtime::format_err!("host failed on purpose")),
                    Step::Callback => {
                        let square = caller.get_export("square").unwrap().into_func().unwrap();
                        let square = square.get_async().get1::<i32, i32>(&caller)?;
                        Ok(square.call(&mut caller, x).await?)
                    }
                }
            })
        })
        .unwrap();
    linker
}

struct Guest {
    store: Store<Step>,
    run: async_wasm::AsyncTypedFunc<(i32,), i32>,
}

async fn guest(engine: &Engine, linker: &Linker<Step>, step: Step) -> wasmtime::Result<Guest> {
    let module = Module::new(engine, GUEST)?;
    let mut store = Store::new(engine, step);
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i32>(&store)?;
    Ok(Guest { store, run })
}

/// Every scenario, in turn, on one pooled engine; ends with every stack back in the pool.
async fn scenarios() -> wasmtime::Result<()> {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let linker = linker(&engine);

    // A host future pending many times. (Each scenario's guest is dropped at its end,
    // giving its stack back.)
    let mut g = guest(&engine, &linker, Step::Pending(25)).await?;
    assert_eq!(g.run.call(&mut g.store, 4).await?, 41);
    drop(g);

    // Many guests suspended at once, resumed out of order.
    let mut senders = Vec::new();
    let mut calls = FuturesUnordered::new();
    for id in 0..40 {
        let (tx, rx) = oneshot::channel();
        senders.push(Some(tx));
        let mut g = guest(&engine, &linker, Step::Channel(Some(rx))).await?;
        calls.push(async move { (id, g.run.call(&mut g.store, id).await) });
    }
    assert!(futures::poll!(calls.next()).is_pending());
    for id in (0..40)
        .rev()
        .step_by(3)
        .chain((0..40).filter(|i| (39 - i) % 3 != 0))
    {
        senders[id as usize].take().unwrap().send(100).unwrap();
        let (done, result) = calls.next().await.unwrap();
        assert_eq!((done, result?), (id, id + 101));
    }

    // A call dropped while suspended: the host future is dropped, the store goes on.
    let drops = DropCounter::default();
    let mut g = guest(&engine, &linker, Step::Forever(drops.clone())).await?;
    {
        let call = g.run.call(&mut g.store, 1);
        futures::pin_mut!(call);
        assert!(futures::poll!(call.as_mut()).is_pending());
    }
    assert_eq!(drops.dropped(), 1);
    *g.store.data_mut() = Step::Pending(1);
    assert_eq!(g.run.call(&mut g.store, 2).await?, 21);
    drop(g);

    // A trap and a host error, each after a suspension.
    let mut g = guest(&engine, &linker, Step::Trap).await?;
    let err = g.run.call(&mut g.store, 1).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::UnreachableCodeReached)
    );
    *g.store.data_mut() = Step::Fail;
    let err = g.run.call(&mut g.store, 1).await.unwrap_err();
    assert!(format!("{err:?}").contains("host failed on purpose"));
    drop(g);

    // A host function calling back into wasm.
    let mut g = guest(&engine, &linker, Step::Callback).await?;
    assert_eq!(g.run.call(&mut g.store, 7).await?, 50);

    drop(g);
    assert_eq!(pool.stats().in_use, 0);
    Ok(())
}

fn assert_ok(result: wasmtime::Result<()>) {
    if let Err(err) = result {
        panic!("{err:?}");
    }
}

#[test]
fn on_tokio_current_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_ok(rt.block_on(scenarios()));
}

#[test]
fn on_tokio_multi_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    assert_ok(rt.block_on(async { tokio::spawn(scenarios()).await.unwrap() }));
}

#[test]
fn on_futures_local_pool() {
    use futures::task::LocalSpawnExt;
    let mut pool = futures::executor::LocalPool::new();
    let handle = pool.spawner().spawn_local_with_handle(scenarios()).unwrap();
    assert_ok(pool.run_until(handle));
}

#[test]
fn on_async_executor() {
    let ex = async_executor::Executor::new();
    let task = ex.spawn(scenarios());
    // Two threads run the executor, so the task may move between them.
    std::thread::scope(|scope| {
        let (stop_tx, stop_rx) = stop_signal();
        for _ in 0..2 {
            let (ex, stop_rx) = (&ex, stop_rx.clone());
            scope.spawn(move || futures::executor::block_on(ex.run(stop_rx)));
        }
        let result = futures::executor::block_on(task);
        drop(stop_tx);
        assert_ok(result);
    });
}

/// A future that finishes when its sender is dropped, to stop the executor threads.
fn stop_signal() -> (
    oneshot::Sender<()>,
    futures::future::Shared<impl Future<Output = ()> + use<>>,
) {
    use futures::FutureExt;
    let (tx, rx) = oneshot::channel::<()>();
    (tx, rx.map(|_| ()).shared())
}
