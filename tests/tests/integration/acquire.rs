//! `AsyncEngine::acquire_store`: a request waits for one of `max_stores` slots instead of
//! failing at the bound, first come first served, bounded by a queue limit and a timeout
//! that end in an `AcquireError`, and a waiter that is dropped gives its place back.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_wasm::prelude::*;
use async_wasm::{AcquireError, Allocation, AsyncEngine, EngineError, PooledStore};
use tests::poll_once;
use wasmtime::{Caller, InstancePre, Linker, Module};

/// Stores in use at once, and the most there ever were.
#[derive(Default)]
struct InUse {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// A guest with a memory whose `run` awaits the host, which holds the store across a
/// timer so that requests overlap.
const GUEST: &str = r#"(module
    (import "env" "work" (func $work (param i32) (result i32)))
    (memory 1)
    (func (export "run") (param i32) (result i32) (call $work (local.get 0))))"#;

fn pre(engine: &AsyncEngine, in_use: &Arc<InUse>) -> wasmtime::Result<InstancePre<()>> {
    let mut linker = Linker::new(engine.engine());
    let in_use = in_use.clone();
    linker.func_wrap_async1("env", "work", move |_: Caller<'_, ()>, x: i32| {
        let in_use = in_use.clone();
        Box::new(async move {
            let now = in_use.now.fetch_add(1, Ordering::SeqCst) + 1;
            in_use.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            in_use.now.fetch_sub(1, Ordering::SeqCst);
            x + 1
        })
    })?;
    linker.instantiate_pre(&Module::new(engine.engine(), GUEST)?)
}

async fn request(engine: &AsyncEngine, pre: &InstancePre<()>, x: i32) -> wasmtime::Result<i32> {
    let mut store = engine.acquire_store(()).await?;
    let instance = pre.instantiate_async(&mut store).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    run.get_async()
        .get1::<i32, i32>(&store)?
        .call(&mut store, x)
        .await
}

/// The user's case: 500 requests in flight against `max_stores(50)`. With stores that
/// do not wait, most failed with wasmtime's `maximum concurrent limit of 50 for core
/// instances reached`; here every one waits for a slot and succeeds, on both allocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_requests_share_fifty_stores() -> wasmtime::Result<()> {
    for allocation in [Allocation::Pooling, Allocation::StackPool] {
        let engine = AsyncEngine::builder()
            .allocation(allocation)
            .max_stores(50)
            // The default (30 s) on one, no limit at all on the other.
            .acquire_timeout(match allocation {
                Allocation::Pooling => Duration::from_secs(30),
                _ => Duration::MAX,
            })
            .build()?;
        let in_use = Arc::new(InUse::default());
        let pre = pre(&engine, &in_use)?;
        let requests: Vec<_> = (0..500)
            .map(|x| {
                let (engine, pre) = (engine.clone(), pre.clone());
                tokio::spawn(async move { request(&engine, &pre, x).await })
            })
            .collect();
        for (x, request) in requests.into_iter().enumerate() {
            assert_eq!(request.await.unwrap()?, x as i32 + 1, "{allocation:?}");
        }
        let peak = in_use.peak.load(Ordering::SeqCst);
        assert!(peak <= 50, "{allocation:?}: {peak} stores at once");
    }
    Ok(())
}

type Waiting<'a> = Pin<Box<dyn Future<Output = Result<PooledStore<()>, AcquireError>> + 'a>>;

/// A fresh acquisition, polled once: queued.
fn queued(engine: &AsyncEngine) -> Waiting<'_> {
    let mut wait: Waiting<'_> = Box::pin(engine.acquire_store(()));
    assert!(poll_once(&mut wait).is_pending(), "queued");
    wait
}

/// Freed slots go to the oldest waiter, and past `max_waiting` the next request fails at
/// once with a typed error a server can find in a `wasmtime::Error`.
#[tokio::test(flavor = "current_thread")]
async fn waiters_are_served_in_order_and_the_queue_is_bounded() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .max_stores(1)
        .max_waiting(2)
        .build()?;
    let held = engine.acquire_store(()).await?;
    let first = queued(&engine);
    let mut second = queued(&engine);

    let refused: wasmtime::Error = engine.acquire_store(()).await.unwrap_err().into();
    assert_eq!(
        refused.downcast_ref::<AcquireError>(),
        Some(&AcquireError::QueueFull { max_waiting: 2 })
    );

    drop(held);
    assert!(
        poll_once(&mut second).is_pending(),
        "the second waits its turn"
    );
    let first = first.await?;
    assert!(poll_once(&mut second).is_pending());
    drop(first);
    let _second = second.await?;
    Ok(())
}

/// Cancel safety: a waiter dropped while queued leaves the queue, and one dropped after it
/// was handed a slot (before it saw it) passes the slot on. No slot is lost.
#[tokio::test(flavor = "current_thread")]
async fn dropped_waiters_give_their_place_back() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .max_stores(2)
        .max_waiting(3)
        .build()?;
    let (a, b) = (
        engine.acquire_store(()).await?,
        engine.acquire_store(()).await?,
    );
    let waiters: Vec<_> = (0..3).map(|_| queued(&engine)).collect();
    drop(waiters); // three places back
    let granted = queued(&engine);
    let next = queued(&engine);
    drop(a); // the slot goes to `granted`...
    drop(granted); // ...which drops it unseen: the slot goes on to `next`
    let next = next.await?;
    drop((b, next));
    // Both slots are free again: two stores at once, without waiting.
    let mut first = Box::pin(engine.acquire_store(()));
    let mut second = Box::pin(engine.acquire_store(()));
    assert!(poll_once(&mut first).is_ready() && poll_once(&mut second).is_ready());
    Ok(())
}

/// A wait ends at `acquire_timeout` with `AcquireError::TimedOut`, and the slot count is
/// intact after it; on three executors.
#[test]
fn a_wait_times_out_and_leaves_no_trace() {
    async fn check() -> wasmtime::Result<()> {
        let engine = AsyncEngine::builder()
            .max_stores(1)
            .acquire_timeout(Duration::from_millis(20))
            .build()?;
        let held = engine.acquire_store(()).await?;
        let err = engine.acquire_store(()).await.unwrap_err();
        assert_eq!(
            err,
            AcquireError::TimedOut {
                timeout: Duration::from_millis(20)
            }
        );
        drop(held);
        let mut again = Box::pin(engine.acquire_store(()));
        assert!(
            poll_once(&mut again).is_ready(),
            "the slot was free at once"
        );
        Ok(())
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(check())
        .unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(check())
        .unwrap();
    futures::executor::block_on(check()).unwrap();
}

/// Without a bound on stores (`Allocation::StackPool`, no `max_stores`) nothing waits, and
/// the settings of the wait are refused rather than ignored.
#[test]
fn an_unbounded_engine_never_waits() -> wasmtime::Result<()> {
    let unbounded = || AsyncEngine::builder().allocation(Allocation::StackPool);
    for (setting, builder) in [
        ("max_waiting", unbounded().max_waiting(0)),
        (
            "acquire_timeout",
            unbounded().acquire_timeout(Duration::from_secs(1)),
        ),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(
            err.downcast_ref::<EngineError>(),
            Some(&EngineError::NotUnder {
                setting,
                allocation: Allocation::StackPool
            })
        );
    }
    let engine = unbounded().build()?;
    let stores: Vec<_> = (0..100)
        .map(|_| futures::executor::block_on(engine.acquire_store(())))
        .collect::<Result<_, _>>()?;
    assert_eq!(stores.len(), 100);
    Ok(())
}

/// Cancellation under load, on a multi-thread runtime: 300 requests against 10 slots, every
/// other one given up by a timeout of the caller's while it waits or works. Each slot is
/// back afterwards: ten stores at once without waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_under_load_lose_no_slot() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .max_stores(10)
        .acquire_timeout(Duration::MAX)
        .build()?;
    let pre = pre(&engine, &Arc::new(InUse::default()))?;
    let requests: Vec<_> = (0..300)
        .map(|x| {
            let (engine, pre) = (engine.clone(), pre.clone());
            tokio::spawn(async move {
                let request = request(&engine, &pre, x);
                if x % 2 == 0 {
                    tokio::time::timeout(Duration::from_micros(500), request)
                        .await
                        .ok()
                } else {
                    Some(request.await)
                }
            })
        })
        .collect();
    let mut completed = 0;
    for request in requests {
        if let Some(result) = request.await.unwrap() {
            result?;
            completed += 1;
        }
    }
    assert!(
        completed >= 150,
        "every request without a timeout completed"
    );
    let mut stores = Vec::new();
    for _ in 0..10 {
        let mut acquire = Box::pin(engine.acquire_store(()));
        match poll_once(&mut acquire) {
            std::task::Poll::Ready(store) => stores.push(store?),
            std::task::Poll::Pending => panic!("a slot was lost"),
        }
    }
    Ok(())
}
