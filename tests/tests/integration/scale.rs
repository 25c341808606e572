//! Scale: as many guests suspended at once on one thread as the process can map, and
//! bounded pools that turn "too many" into clean errors for the excess only.

use std::sync::Arc;

use async_wasm::StackPoolError;
use async_wasm::prelude::*;
use futures::stream::{FuturesUnordered, StreamExt};
use tests::pooled_engine;
use tokio::sync::Semaphore;
use wasmtime::{Caller, Engine, Linker, Module, Store};

const GUEST: &str = r#"(module
    (import "env" "wait" (func $wait (param i32) (result i32)))
    (func (export "run") (param i32) (result i32)
        (i32.add (call $wait (local.get 0)) (i32.const 1))))"#;

/// `env.wait` waits for a permit of the store's semaphore, then doubles its argument.
fn linker(engine: &Engine) -> Linker<Arc<Semaphore>> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1(
            "env",
            "wait",
            |caller: Caller<'_, Arc<Semaphore>>, x: i32| {
                let gate = caller.data().clone();
                Box::new(async move {
                    gate.acquire().await.expect("never closed").forget();
                    x * 2
                })
            },
        )
        .unwrap();
    linker
}

/// Starts `guests` instances of `wat` (a guest with `GUEST`'s interface), each suspended in
/// `env.wait` until the gate opens. Returns each guest's result (or error) once the gate is
/// opened for all of them.
async fn run_gated(
    engine: &Engine,
    pool: &StackPool,
    wat: &str,
    guests: usize,
    expect_in_use: usize,
) -> Vec<wasmtime::Result<i32>> {
    let module = Module::new(engine, wat).unwrap();
    let linker = linker(engine);
    let gate = Arc::new(Semaphore::new(0));
    let mut calls: FuturesUnordered<_> = (0..guests)
        .map(|id| {
            let (linker, module) = (&linker, &module);
            let mut store = Store::new(engine, gate.clone());
            async move {
                let instance = linker.instantiate_async(&mut store, module).await?;
                let run = instance.get_func(&mut store, "run").unwrap();
                let run = run.get_async().get1::<i32, i32>(&store)?;
                let out = run.call(&mut store, id as i32).await?;
                assert_eq!(out, id as i32 * 2 + 1);
                wasmtime::Result::<i32>::Ok(out)
            }
        })
        .collect();
    // Poll every guest until it waits; the ones that fail finish here.
    let mut results = Vec::new();
    while let std::task::Poll::Ready(Some(result)) = futures::poll!(calls.next()) {
        results.push(result);
    }
    assert_eq!(pool.stats().in_use, expect_in_use, "suspended at once");
    gate.add_permits(guests);
    results.extend(calls.collect::<Vec<_>>().await);
    results
}

#[tokio::test(flavor = "current_thread")]
async fn a_bounded_pool_fails_exactly_the_excess() {
    const GUESTS: usize = 5_000;
    const BOUND: usize = 1_000;
    let pool = StackPool::builder(1 << 20)
        .max_stacks(BOUND)
        .max_idle(100)
        .build()
        .unwrap();
    let engine = pooled_engine(&pool);
    let results = run_gated(&engine, &pool, GUEST, GUESTS, BOUND).await;
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    assert_eq!((ok.len(), failed.len()), (BOUND, GUESTS - BOUND));
    for err in failed {
        let err = err.unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<StackPoolError>(),
                Some(StackPoolError::Exhausted { max_stacks: BOUND })
            ),
            "{err:?}"
        );
    }
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.idle), (0, 100));

    // With the load gone the same engine serves new guests.
    let results = run_gated(&engine, &pool, GUEST, 10, 10).await;
    assert!(results.iter().all(|r| r.is_ok()));
}

/// A pool made without a bound suspends guests on one thread up to the default bound, what
/// the process can map (16,382 with Linux's default `vm.max_map_count`), and fails the
/// excess with the typed error; every guest suspended finishes with its own answer.
#[tokio::test(flavor = "current_thread")]
async fn a_default_pool_suspends_guests_up_to_what_the_process_can_map() {
    let pool = StackPool::new(1 << 20);
    let bound = pool.max_stacks();
    // vm.max_map_count in the millions (some distributions) would make this minutes long.
    if bound > 100_000 {
        eprintln!("skipped: a default bound of {bound} stacks is too many guests here");
        return;
    }
    let engine = pooled_engine(&pool);
    let guests = bound + 100;
    let results = run_gated(&engine, &pool, GUEST, guests, bound).await;
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    assert_eq!((ok.len(), failed.len()), (bound, 100));
    let mut outs: Vec<i32> = ok.into_iter().map(|r| r.unwrap()).collect();
    outs.sort_unstable();
    outs.dedup();
    assert_eq!(outs.len(), bound, "each guest its own answer");
    for err in failed {
        let err = err.unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<StackPoolError>(),
                Some(StackPoolError::Exhausted { max_stacks }) if *max_stacks == bound
            ),
            "{err:?}"
        );
    }
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.created), (0, bound as u64));
}

/// The load that aborted a process before the bound: 40,000 guests with a memory page at
/// once, beyond what `vm.max_map_count` allows. With `max_stacks(10_000)` the excess fails
/// cleanly. Heavy (a minute, a few GiB of address space): run it with
/// `cargo test --release -p tests --test integration scale -- --ignored`.
#[tokio::test(flavor = "current_thread")]
#[ignore = "heavy: run with --ignored, in release"]
async fn forty_thousand_guests_with_memory_against_a_bound() {
    const GUESTS: usize = 40_000;
    const BOUND: usize = 10_000;
    let pool = StackPool::builder(1 << 20)
        .max_stacks(BOUND)
        .max_idle(0)
        .build()
        .unwrap();
    let engine = pooled_engine(&pool);
    let memory_guest = GUEST.replace("(func (export", "(memory 1) (func (export");
    let results = run_gated(&engine, &pool, &memory_guest, GUESTS, BOUND).await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!((GUESTS - failed, failed), (BOUND, GUESTS - BOUND));
    assert_eq!(pool.stats().in_use, 0);
}
