//! Suspension: host futures pending many times, many guests suspended at once and resumed
//! out of order, and calls that move between threads while suspended.

use std::task::Poll;

use async_wasm::prelude::*;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tests::{pending, poll_counting, poll_once, pooled_engine};
use tokio::sync::oneshot;
use wasmtime::{Caller, Engine, Linker, Module, Store, Trap};

const ADD_GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32)
        (i32.add (call $host (local.get 0)) (i32.const 1))))"#;

#[test]
fn the_awaiting_task_sees_every_pending_of_the_host() {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, ADD_GUEST).unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async1("env", "host", |caller: Caller<'_, usize>, x: i32| {
            Box::new(async move {
                pending(*caller.data()).await;
                x * 10
            })
        })
        .unwrap();
    for times in [0, 1, 5, 100] {
        let mut store = Store::new(&engine, times);
        let call = async {
            let instance = linker.instantiate_async(&mut store, &module).await?;
            let run = instance.get_func(&mut store, "run").unwrap();
            run.get_async()
                .get1::<i32, i32>(&store)?
                .call(&mut store, 4)
                .await
        };
        let (result, pendings) = poll_counting(call);
        assert_eq!(result.unwrap(), 41);
        assert_eq!(
            pendings, times,
            "the task is suspended once per host Pending"
        );
    }
}

/// One host import that waits for a value from a channel the test holds, per guest.
fn channel_linker(engine: &Engine) -> Linker<Option<oneshot::Receiver<i32>>> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1(
            "env",
            "host",
            |mut caller: Caller<'_, Option<oneshot::Receiver<i32>>>, x: i32| {
                Box::new(async move {
                    let rx = caller.data_mut().take().expect("one call per guest");
                    rx.await.expect("the test sends a value") + x
                })
            },
        )
        .unwrap();
    linker
}

#[tokio::test(flavor = "current_thread")]
async fn many_guests_suspended_on_one_thread_resume_out_of_order() -> wasmtime::Result<()> {
    const GUESTS: usize = 200;
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, ADD_GUEST)?;
    let linker = channel_linker(&engine);

    let mut senders = Vec::new();
    let mut calls = FuturesUnordered::new();
    for id in 0..GUESTS {
        let (tx, rx) = oneshot::channel();
        senders.push(tx);
        let (linker, module) = (&linker, &module);
        let mut store = Store::new(&engine, Some(rx));
        calls.push(async move {
            let instance = linker.instantiate_async(&mut store, module).await?;
            let run = instance.get_func(&mut store, "run").unwrap();
            let run = run.get_async().get1::<i32, i32>(&store)?;
            wasmtime::Result::<_>::Ok((id, run.call(&mut store, id as i32).await?))
        });
    }
    // Every guest runs until its host call waits.
    assert!(futures::poll!(calls.next()).is_pending());
    assert_eq!(pool.stats().in_use, GUESTS);

    // Resume them in a scrambled order and check each finishes next, with its own result.
    let order: Vec<usize> = (0..GUESTS).map(|i| (i * 7919) % GUESTS).collect();
    let mut senders: Vec<_> = senders.into_iter().map(Some).collect();
    for &id in &order {
        senders[id].take().unwrap().send(1000).unwrap();
        let (done, result) = calls.next().await.unwrap()?;
        assert_eq!(done, id, "the guest whose host future was woken finishes");
        assert_eq!(result, 1000 + id as i32 + 1);
    }
    assert!(calls.next().await.is_none());
    assert_eq!(pool.stats().in_use, 0);
    assert!(pool.stats().created <= GUESTS as u64);
    Ok(())
}

/// The guest calls the host, then traps or not depending on what the host returned.
const TRAP_AFTER_GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32)
        (local i32)
        (local.set 1 (call $host (local.get 0)))
        (if (i32.eq (local.get 1) (i32.const -1)) (then unreachable))
        (local.get 1)))"#;

#[derive(Debug)]
struct HostFailed(i32);

impl std::fmt::Display for HostFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host failed with {}", self.0)
    }
}

impl std::error::Error for HostFailed {}

/// Starts a call on this thread until the host waits, and returns it, `Send`, for another
/// thread to finish. What the host does after the move depends on the value sent.
fn start_call(
    engine: &Engine,
) -> (
    oneshot::Sender<i32>,
    impl Future<Output = wasmtime::Result<i32>> + Send + Unpin + use<>,
) {
    let module = Module::new(engine, TRAP_AFTER_GUEST).unwrap();
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1(
            "env",
            "host",
            |mut caller: Caller<'_, Option<oneshot::Receiver<i32>>>, _x: i32| {
                Box::new(async move {
                    let rx = caller.data_mut().take().unwrap();
                    let v = rx.await.unwrap();
                    if v == 13 {
                        return Err(wasmtime::Error::new(HostFailed(v)));
                    }
                    Ok(v)
                })
            },
        )
        .unwrap();
    let (tx, rx) = oneshot::channel();
    let mut store = Store::new(engine, Some(rx));
    let mut call = Box::pin(async move {
        let instance = linker.instantiate_async(&mut store, &module).await?;
        let run = instance.get_func(&mut store, "run").unwrap();
        let run = run.get_async().get1::<i32, i32>(&store)?;
        run.call(&mut store, 0).await
    });
    assert!(poll_once(&mut call).is_pending());
    (tx, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_suspended_on_one_thread_finishes_on_another() {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    for (sent, check) in [
        (
            5,
            Box::new(|r: wasmtime::Result<i32>| assert_eq!(r.unwrap(), 5))
                as Box<dyn Fn(wasmtime::Result<i32>) + Send>,
        ),
        (
            -1,
            Box::new(|r: wasmtime::Result<i32>| {
                let err = r.unwrap_err();
                assert_eq!(
                    err.downcast_ref::<Trap>(),
                    Some(&Trap::UnreachableCodeReached)
                );
            }),
        ),
        (
            13,
            Box::new(|r: wasmtime::Result<i32>| {
                let err = r.unwrap_err();
                assert_eq!(err.downcast_ref::<HostFailed>().map(|e| e.0), Some(13));
            }),
        ),
    ] {
        // Suspended on a thread of its own, then finished by a tokio worker.
        let engine2 = engine.clone();
        let (tx, call, started_on) = std::thread::spawn(move || {
            let (tx, call) = start_call(&engine2);
            (tx, call, std::thread::current().id())
        })
        .join()
        .unwrap();
        let task = tokio::spawn(async move { (call.await, std::thread::current().id()) });
        tx.send(sent).unwrap();
        let (result, finished_on) = task.await.unwrap();
        assert_ne!(started_on, finished_on);
        check(result);
    }
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn calls_interleave_across_threads_with_traps_in_between() {
    // Two suspended calls started on one thread, one finished (trapping) on a second thread
    // while the other is still suspended, then the other finished on a third.
    let engine = Engine::default();
    let (tx_a, mut a) = start_call(&engine);
    let (tx_b, b) = start_call(&engine);
    tx_a.send(-1).unwrap();
    let a_result = std::thread::spawn(move || futures::executor::block_on(&mut a))
        .join()
        .unwrap();
    assert_eq!(
        a_result.unwrap_err().downcast_ref::<Trap>(),
        Some(&Trap::UnreachableCodeReached)
    );
    tx_b.send(7).unwrap();
    let b_result = std::thread::spawn(move || futures::executor::block_on(b))
        .join()
        .unwrap();
    assert_eq!(b_result.unwrap(), 7);
}

#[test]
fn a_suspended_call_can_be_polled_from_many_threads() {
    let engine = Engine::default();
    let (tx, mut call) = start_call(&engine);
    for _ in 0..3 {
        call = std::thread::spawn(move || {
            assert!(matches!(poll_once(&mut call), Poll::Pending));
            call
        })
        .join()
        .unwrap();
    }
    tx.send(9).unwrap();
    assert_eq!(futures::executor::block_on(call).unwrap(), 9);
}

#[test]
fn a_call_created_polled_and_dropped_on_three_threads() {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    // Created on this thread, polled until suspended on a second, dropped on a third.
    let (tx, mut call) = start_call(&engine);
    call = std::thread::spawn(move || {
        assert!(poll_once(&mut call).is_pending());
        call
    })
    .join()
    .unwrap();
    assert_eq!(pool.stats().in_use, 1);
    std::thread::spawn(move || drop(call)).join().unwrap();
    // The store went with the future: its stack is back, and the host future is gone
    // (its channel receiver with it).
    assert_eq!(pool.stats().in_use, 0);
    assert!(tx.send(1).is_err());
}
