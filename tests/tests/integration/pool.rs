//! A store per request on a pool: stacks are reused, and all come back; the pool's bound
//! and refusals are typed errors; zeroing is seen from inside wasmtime.

use async_wasm::prelude::*;
use async_wasm::{StackPoolBuilder, StackPoolError};
use tests::{pending, pooled_engine};
use wasmtime::{Caller, Engine, Instance, Linker, Module, Store};

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
    let pool = StackPool::builder(1 << 20).max_idle(8).build().unwrap();
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
    pool.configure(&mut config).unwrap();
    let zeroing = Engine::new(&config).unwrap();
    let plain = pooled_engine(&pool);
    for engine in [&zeroing, &plain, &zeroing] {
        let (linker, module) = (linker(engine), Module::new(engine, GUEST).unwrap());
        assert_eq!(request(engine, &linker, &module, 3).await, 301);
    }
    assert_eq!((pool.stats().created, pool.stats().reused), (1, 2));
}

/// The bound is an error an embedder can match on, from the calls and instantiations that
/// needed a stack, whatever wasmtime wraps around it.
#[tokio::test(flavor = "current_thread")]
async fn the_bound_is_a_typed_error_from_calls_and_instantiations() {
    let pool = StackPool::builder(1 << 20).max_stacks(1).build().unwrap();
    let engine = pooled_engine(&pool);
    let plain = Module::new(
        &engine,
        r#"(module (func (export "f") (result i32) i32.const 1))"#,
    )
    .unwrap();
    let with_start = Module::new(&engine, r#"(module (func $s) (start $s))"#).unwrap();
    let exhausted = |err: &wasmtime::Error| {
        matches!(
            err.downcast_ref::<StackPoolError>(),
            Some(StackPoolError::Exhausted { max_stacks: 1 })
        )
    };

    // The first store takes the one stack and keeps it while it lives.
    let mut first = Store::new(&engine, ());
    let instance = Instance::new_async(&mut first, &plain, &[]).await.unwrap();
    let f = instance.get_typed_func::<(), i32>(&mut first, "f").unwrap();
    assert_eq!(f.call_async(&mut first, ()).await.unwrap(), 1);

    // A start function runs on a stack too.
    let mut second = Store::new(&engine, ());
    let err = Instance::new_async(&mut second, &with_start, &[])
        .await
        .unwrap_err();
    assert!(exhausted(&err), "{err:?}");

    let instance = Instance::new_async(&mut second, &plain, &[]).await.unwrap();
    let f = instance
        .get_typed_func::<(), i32>(&mut second, "f")
        .unwrap();
    let err = f.call_async(&mut second, ()).await.unwrap_err();
    assert!(exhausted(&err), "{err:?}");
    let f = instance.get_func(&mut second, "f").unwrap();
    let err = f
        .get_async()
        .get0::<i32>(&second)
        .unwrap()
        .call(&mut second)
        .await;
    assert!(exhausted(&err.unwrap_err()));

    // Dropping the first store gives its stack back: the second goes on.
    drop(first);
    assert_eq!(
        f.get_async()
            .get0::<i32>(&second)
            .unwrap()
            .call(&mut second)
            .await
            .unwrap(),
        1
    );
}

/// wasmtime's pooling allocator never asks a `StackPool` for stacks: `configure` cannot see
/// the strategy, so the pool would go unused; `engine` refuses.
#[tokio::test(flavor = "current_thread")]
async fn the_pooling_allocator_is_refused() {
    let pool = StackPool::new(1 << 20);
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());

    let err = pool.engine(&config).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<StackPoolError>(),
        Some(StackPoolError::PoolingAllocator)
    ));
    assert!(err.to_string().contains("on-demand allocator"), "{err}");

    // What `engine` guards against: configured by hand, calls run, on other stacks.
    pool.configure(&mut config).unwrap();
    let engine = Engine::new(&config).unwrap();
    let (linker, module) = (linker(&engine), Module::new(&engine, GUEST).unwrap());
    assert_eq!(request(&engine, &linker, &module, 2).await, 201);
    assert_eq!(pool.stats().created, 0, "the pool was never asked");
}

const PATTERN: u8 = 0xa5;

/// The bytes of the stack [`probe`] reads and its callee fills, measured down from the
/// address of a local in `probe`'s frame: well below `probe`'s own frame, within the
/// callee's buffer.
const REGION: core::ops::Range<usize> = 2 << 10..60 << 10;

/// Fills a 64 KiB local buffer with [`PATTERN`]: the frame of a host function that leaves
/// data on its stack when it returns.
#[inline(never)]
fn fill_a_deep_buffer() -> core::ops::Range<usize> {
    let mut buffer = [0u8; 64 << 10];
    buffer.fill(PATTERN);
    let buffer = std::hint::black_box(&mut buffer);
    let start = buffer.as_ptr() as usize;
    start..start + buffer.len()
}

/// Counts the [`PATTERN`] bytes in [`REGION`] below its own frame (what an earlier call
/// left there), then fills that region with the pattern. Runs in a host function, so on the
/// store's fiber stack, at the same depth in every store.
#[inline(never)]
fn probe() -> usize {
    let anchor = 0u8;
    let anchor = std::hint::black_box(&anchor) as *const u8 as usize;
    let region = anchor - REGION.end..anchor - REGION.start;
    let seen = region
        .clone()
        // SAFETY: `region` is memory of this fiber's stack, 4 to 60 KiB below this frame:
        // wasmtime enters a host function within a few KiB of the top of a 1 MiB stack, so
        // it is inside the stack's usable memory, mapped read-write (had it not been, the
        // guard page below would fault). No Rust value lives there: it is below the stack
        // pointer, unused until `fill_a_deep_buffer` below, and only this thread runs on
        // this stack. Volatile reads, since it is memory outside any allocation the
        // compiler knows of.
        .map(|addr| unsafe { (addr as *const u8).read_volatile() })
        .filter(|&byte| byte == PATTERN)
        .count();
    let filled = fill_a_deep_buffer();
    assert!(
        filled.start <= region.start && region.end <= filled.end,
        "the buffer {filled:x?} covers the region {region:x?}, so the next store reads what \
         this one wrote"
    );
    seen
}

/// A linker with `env.probe` and a guest whose `run` calls it.
fn probe_guest(engine: &Engine) -> (Linker<()>, Module) {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "probe", |_: Caller<'_, ()>, (): ()| {
            Box::new(async move { probe() as i64 })
        })
        .unwrap();
    let module = Module::new(
        engine,
        r#"(module
            (import "env" "probe" (func $probe (result i64)))
            (func (export "run") (result i64) (call $probe)))"#,
    )
    .unwrap();
    (linker, module)
}

/// A new store that has called [`probe`] once, and what the probe saw; the store keeps its
/// stack until dropped.
async fn probed_store(linker: &Linker<()>, module: &Module) -> (Store<()>, usize) {
    let mut store = Store::new(linker.engine(), ());
    let instance = linker.instantiate_async(&mut store, module).await.unwrap();
    let run = instance
        .get_typed_func::<(), i64>(&mut store, "run")
        .unwrap();
    let seen = run.call_async(&mut store, ()).await.unwrap() as usize;
    (store, seen)
}

/// Runs `stores` stores one after another, each calling [`probe`] once; what each saw.
async fn probes(engine: &Engine, stores: usize) -> Vec<usize> {
    let (linker, module) = probe_guest(engine);
    let mut seen = Vec::new();
    for _ in 0..stores {
        seen.push(probed_store(&linker, &module).await.1);
    }
    seen
}

/// After a spike of stores whose host functions went deep, the pool keeps the default
/// `max_idle` of their stacks and unmaps the rest as the stores are dropped; `trim` unmaps
/// more, and gives back what the ones it keeps held (the next store finds nothing an
/// earlier one left, without zeroing).
#[tokio::test(flavor = "current_thread")]
async fn after_a_spike_the_pool_gives_memory_back() {
    const SPIKE: usize = StackPoolBuilder::DEFAULT_MAX_IDLE + 44;
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let (linker, module) = probe_guest(&engine);
    let mut spike = Vec::new();
    for _ in 0..SPIKE {
        spike.push(probed_store(&linker, &module).await.0);
    }
    assert_eq!(pool.stats().in_use, SPIKE);
    drop(spike);
    let stats = pool.stats();
    assert_eq!(
        (stats.in_use, stats.idle, stats.created),
        (0, StackPoolBuilder::DEFAULT_MAX_IDLE, SPIKE as u64)
    );

    // Without a trim, the next store finds what a store of the spike left.
    let (store, seen) = probed_store(&linker, &module).await;
    assert!(seen > 0);
    drop(store);

    assert_eq!(pool.trim(1), StackPoolBuilder::DEFAULT_MAX_IDLE - 1);
    assert_eq!(pool.stats().idle, 1);
    let (store, seen) = probed_store(&linker, &module).await;
    assert_eq!(seen, 0, "the kept stack's pages were given back");
    assert_eq!(pool.stats().created, SPIKE as u64, "and it was lent again");
    drop(store);
}

/// With `async_stack_zeroing(true)` no store finds on its stack what an earlier store's
/// host function left there, seen from inside wasmtime rather than through the pool: on
/// stacks reused at once (`decommit_batch(1)`), on stacks that come back in batches (the
/// default), over enough stores that every stack is reused, and with the region probed
/// inside the part zeroed by writing (`keep_resident`) rather than given back.
#[tokio::test(flavor = "current_thread")]
async fn zeroed_stacks_hold_nothing_an_earlier_store_left() {
    for pool in [
        StackPool::builder(1 << 20)
            .decommit_batch(1)
            .build()
            .unwrap(),
        StackPool::new(1 << 20),
        StackPool::builder(1 << 20)
            .keep_resident(256 << 10)
            .build()
            .unwrap(),
    ] {
        let mut config = wasmtime::Config::new();
        config.async_stack_zeroing(true);
        let engine = pool.engine(&config).unwrap();
        let seen = probes(&engine, 3 * pool.decommit_batch() + 3).await;
        assert!(seen.iter().all(|&n| n == 0), "{pool:?}: {seen:?}");
        assert!(pool.stats().reused > 0, "{pool:?}");
    }
}

/// The same stores without zeroing: the second finds the first's data. This is what makes
/// the test above able to fail.
#[tokio::test(flavor = "current_thread")]
async fn without_zeroing_a_store_finds_what_the_last_one_left() {
    let pool = StackPool::new(1 << 20);
    let seen = probes(&pooled_engine(&pool), 2).await;
    assert_eq!(seen[0], 0, "a fresh stack is zero");
    assert!(seen[1] > 0, "{seen:?}");
    assert_eq!((pool.stats().created, pool.stats().reused), (1, 1));
}

/// What an idle store costs while it holds its stack: resident memory and memory mappings
/// per store, for 10,000 stores that have each made one async call (so each holds a 1 MiB
/// stack) and stay alive. Prints the figures; not run by default:
/// `cargo test --release -p tests --test integration -- --ignored --nocapture idle_stores`.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement: run alone with --ignored --nocapture, in release"]
async fn idle_stores_hold_their_stacks() {
    const STORES: usize = 10_000;
    fn rss_kib() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    fn mappings() -> usize {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count()
    }
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, r#"(module (func (export "f")))"#).unwrap();
    let (rss0, maps0) = (rss_kib(), mappings());
    let mut stores = Vec::with_capacity(STORES);
    for _ in 0..STORES {
        let mut store = Store::new(&engine, ());
        let instance = Instance::new_async(&mut store, &module, &[]).await.unwrap();
        let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
        stores.push((store, f));
    }
    let (rss1, maps1) = (rss_kib(), mappings());
    for (store, f) in &mut stores {
        f.call_async(&mut *store, ()).await.unwrap();
    }
    let (rss2, maps2) = (rss_kib(), mappings());
    assert_eq!(
        pool.stats().in_use,
        STORES,
        "every idle store holds its stack"
    );
    let per = |kib: usize| kib as f64 / STORES as f64;
    println!(
        "{STORES} idle stores: {:.2} KiB RSS and {:.2} mappings each, of which their stacks \
         {:.2} KiB and {:.2} mappings",
        per(rss2 - rss0),
        per(maps2 - maps0),
        per(rss2 - rss1),
        per(maps2 - maps1),
    );
    drop(stores);
    assert_eq!(pool.stats().in_use, 0);
}
