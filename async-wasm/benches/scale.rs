//! Many guests suspended at once on one thread: `GUESTS` stores each call into a guest
//! whose host function waits for its own release (a oneshot channel, as a socket read
//! would), all are polled until every one is suspended, then all are released and run to
//! completion. Every stack comes from one `StackPool`, as a server's would.
//!
//! What is timed is the suspension and the resumption: from the first poll of the calls to
//! the last result, so the fiber stack lease (the first async call of a store takes one),
//! the switch off each guest's stack, the wake-ups, the switch back and the calls'
//! completion. Making the stores and instances before, and dropping them after, is not.
//!
//! - `wasmtime_async`: `Linker::func_wrap_async` and `TypedFunc::call_async`.
//! - `async_wasm`: `LinkerExt::func_wrap_async1` and `get_async().get1().call()`.
//!
//! Run with `cargo bench -p async-wasm --bench scale`.

#[allow(dead_code)]
mod common;

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use async_wasm::prelude::*;
use common::{block_on, pooled_engine};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use futures::StreamExt;
use futures::channel::oneshot;
use futures::stream::FuturesUnordered;
use wasmtime::{Caller, Engine, Instance, Linker, Module, Store};

/// How many guests are suspended at once. 10,000 stacks are 20,000 of Linux's default
/// 65,530 memory mappings: the guest has no memory so as not to need more.
const GUESTS: [usize; 2] = [1_000, 10_000];

const GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32) (call $host (local.get 0))))"#;

/// A store's data: the receiving end of its guest's release, taken by the host call.
type Gate = Option<oneshot::Receiver<()>>;

/// The host function's future, shared by both registrations: wait for the release, answer.
async fn wait_for_release(mut caller: Caller<'_, Gate>, x: i32) -> i32 {
    let release = caller.data_mut().take().expect("one host call per guest");
    release.await.expect("every guest is released");
    x + 1
}

/// A guest ready to be called: its store and the handle of its export `run`.
type Guest<H> = (Store<Gate>, H);

fn wasmtime_linker(engine: &Engine) -> Linker<Gate> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "host", |caller: Caller<'_, Gate>, (x,): (i32,)| {
            Box::new(wait_for_release(caller, x))
        })
        .unwrap();
    linker
}

fn async_wasm_linker(engine: &Engine) -> Linker<Gate> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1("env", "host", |caller: Caller<'_, Gate>, x: i32| {
            Box::new(wait_for_release(caller, x))
        })
        .unwrap();
    linker
}

/// `n` stores, each instantiated and holding the export's handle made by `handle`, and the
/// senders that release them.
fn guests<H>(
    linker: &Linker<Gate>,
    module: &Module,
    n: usize,
    handle: impl Fn(&mut Store<Gate>, Instance) -> H,
) -> (Vec<Guest<H>>, Vec<oneshot::Sender<()>>) {
    (0..n)
        .map(|_| {
            let (release, gate) = oneshot::channel();
            let mut store = Store::new(linker.engine(), Some(gate));
            let instance = block_on(linker.instantiate_async(&mut store, module)).unwrap();
            let handle = handle(&mut store, instance);
            ((store, handle), release)
        })
        .unzip()
}

/// Runs every call until its guest is suspended in the host, releases them all, and runs
/// them to completion. Returns how many stacks the pool lent at the peak, which the caller
/// checks outside the timed span: all of them, or the guests were not all suspended at once.
async fn suspend_and_resume<F>(
    pool: &StackPool,
    calls: impl IntoIterator<Item = F>,
    releases: Vec<oneshot::Sender<()>>,
) -> usize
where
    F: Future<Output = wasmtime::Result<i32>>,
{
    let mut calls: FuturesUnordered<F> = calls.into_iter().collect();
    // One poll polls every call once (none wakes itself), which runs each guest until its
    // host future waits for its release.
    let first = futures::poll!(calls.next());
    assert!(first.is_pending(), "no guest finishes before its release");
    let peak = pool.stats().in_use;
    for release in releases {
        release.send(()).expect("the guest waits for its release");
    }
    while let Some(result) = calls.next().await {
        black_box(result.unwrap());
    }
    peak
}

/// Times `iters` rounds of `round`, which makes its guests, then suspends and resumes them
/// and reports the timed span and the stacks lent at the peak.
fn time_rounds(iters: u64, n: usize, mut round: impl FnMut() -> (Duration, usize)) -> Duration {
    (0..iters)
        .map(|_| {
            let (elapsed, peak) = round();
            assert_eq!(peak, n, "every guest was suspended at once");
            elapsed
        })
        .sum()
}

fn scale(c: &mut Criterion) {
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, GUEST).unwrap();
    let (raw, ours) = (wasmtime_linker(&engine), async_wasm_linker(&engine));

    let mut group = c.benchmark_group("scale");
    // A round of 10,000 guests takes milliseconds: flat sampling keeps the sample count
    // (and the run) small instead of growing iterations linearly.
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for n in GUESTS {
        // Reported per guest suspended and resumed.
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("wasmtime_async", n), |b| {
            b.iter_custom(|iters| {
                time_rounds(iters, n, || {
                    let (mut guests, releases) = guests(&raw, &module, n, |store, instance| {
                        instance.get_typed_func::<i32, i32>(store, "run").unwrap()
                    });
                    let start = Instant::now();
                    let calls = guests
                        .iter_mut()
                        .map(|(store, run)| run.call_async(store, 1));
                    let peak = block_on(suspend_and_resume(&pool, calls, releases));
                    (start.elapsed(), peak)
                })
            })
        });
        group.bench_function(BenchmarkId::new("async_wasm", n), |b| {
            b.iter_custom(|iters| {
                time_rounds(iters, n, || {
                    let (mut guests, releases) = guests(&ours, &module, n, |store, instance| {
                        let run = instance.get_func(&mut *store, "run").unwrap();
                        run.get_async().get1::<i32, i32>(&*store).unwrap()
                    });
                    let start = Instant::now();
                    let calls = guests.iter_mut().map(|(store, run)| run.call(store, 1));
                    let peak = block_on(suspend_and_resume(&pool, calls, releases));
                    (start.elapsed(), peak)
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = scale
}
criterion_main!(benches);
