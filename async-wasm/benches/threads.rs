//! A store per request on several threads at once: does throughput per thread hold from
//! one thread to two?
//!
//! For each thread count N in `ASYNC_WASM_BENCH_THREADS` (default `1,2`):
//!
//! - `os threads`: N OS threads, each running store-per-request loops (one request at a
//!   time, under `block_on`), all on one engine: so on one shared `StackPool`, or one shared
//!   pooling allocator.
//! - `tokio`: a tokio multi-thread runtime with N workers running `ASYNC_WASM_BENCH_TASKS`
//!   (default 200) request loops as tasks at once, so that many stores are alive, and many
//!   stacks lent, at any time. Synchronous wasmtime has no such variant.
//!
//! Variants, on both guests: `sync_pooling` (synchronous wasmtime, tuned pooling
//! allocator), `async_pooling_raw` (wasmtime async on the same), `async_stackpool_async_wasm`
//! (async-wasm's API, on-demand allocator, stacks from a `StackPool`), and the same with
//! `common::malloc_memory`; the `StackPool` is shared by both.
//!
//! Each measurement runs for `ASYNC_WASM_BENCH_MILLIS` (default 250) of wall time; the
//! measurements are repeated in `ASYNC_WASM_BENCH_ROUNDS` (default 5) interleaved rounds and
//! the median kept. Printed: requests per second per thread (wall clock: total requests
//! over the run's length, over N), the process's CPU time per request, and for N above the
//! first the ratios of per-thread throughput and of CPU time per request to those at the
//! first N. On a machine with fewer free cores than N, wall-clock throughput per thread drops
//! whatever the code does; the CPU time per request says whether the work itself grew
//! (contention: locks, cache lines, page-table shootdowns).
//!
//! Run with `cargo bench -p async-wasm --bench threads`.

#[allow(dead_code)]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_wasm::StackPool;
use common::rounds::{env_usize, median};
use common::{Allocator, Api, Guest, Prepared, STACK_SIZE, tuned_pooling};

/// CPU time of the whole process, every thread included.
#[cfg(unix)]
fn process_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock always exists on unix.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(ret, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(not(unix))]
fn process_cpu_time() -> Duration {
    Duration::ZERO
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    OsThreads,
    Tokio,
}

/// One measurement: requests served and the CPU time they took, over `wall`.
struct Run {
    requests: u64,
    wall: Duration,
    cpu: Duration,
}

fn run_os_threads(prepared: &Prepared, threads: usize, length: Duration) -> Run {
    let request = prepared.clone().blocking();
    let stop = Arc::new(AtomicBool::new(false));
    let cpu = process_cpu_time();
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (request, stop) = (request.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut served = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    black_box(request());
                    served += 1;
                }
                served
            })
        })
        .collect();
    std::thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    let requests = handles.into_iter().map(|h| h.join().unwrap()).sum();
    Run {
        requests,
        wall: start.elapsed(),
        cpu: process_cpu_time() - cpu,
    }
}

fn run_tokio(prepared: &Prepared, threads: usize, tasks: usize, length: Duration) -> Run {
    let request = prepared.clone().future().expect("an async variant");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_time()
        .build()
        .unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu = process_cpu_time();
    let start = Instant::now();
    runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (request, served, stop) = (request.clone(), served.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        black_box(request().await);
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(length).await;
        stop.store(true, Ordering::Relaxed);
        for handle in handles {
            handle.await.unwrap();
        }
    });
    let run = Run {
        requests: served.load(Ordering::Relaxed),
        wall: start.elapsed(),
        cpu: process_cpu_time() - cpu,
    };
    drop(runtime);
    run
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let threads: Vec<usize> = std::env::var("ASYNC_WASM_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".to_string())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("ASYNC_WASM_BENCH_THREADS: numbers, comma separated")
        })
        .collect();
    let tasks = env_usize("ASYNC_WASM_BENCH_TASKS", 200).max(1);
    let length = Duration::from_millis(env_usize("ASYNC_WASM_BENCH_MILLIS", 250) as u64);
    let rounds = env_usize("ASYNC_WASM_BENCH_ROUNDS", 5).max(1);
    // tokio's tasks each hold a store: the pool needs a slot for each, plus the threads'.
    let mut settings = tuned_pooling();
    settings.total = settings.total.max(tasks as u32 + 64);
    let pooling = Allocator::Pooling(settings).engine(false);
    let pool = StackPool::new(STACK_SIZE);
    let stack_pool = Allocator::StackPool(pool.clone()).engine(false);
    let mut config = wasmtime::Config::new();
    let malloc_stack_pool = pool.engine(common::malloc_memory(&mut config)).unwrap();

    // (name, guest, mode, prepared)
    let mut cases = Vec::new();
    for guest in Guest::ALL {
        let variants = [
            ("sync_pooling", &pooling, Api::Sync),
            ("async_pooling_raw", &pooling, Api::WasmtimeAsync),
            ("async_stackpool_async_wasm", &stack_pool, Api::AsyncWasm),
            (
                "async_stackpool_async_wasm_malloc_memory",
                &malloc_stack_pool,
                Api::AsyncWasm,
            ),
        ];
        for (name, engine, api) in variants {
            let prepared = Prepared::new(engine, guest, api);
            let request = prepared.clone().blocking();
            assert_eq!(request(), guest.expected(), "{name} on {}", guest.name());
            for mode in [Mode::OsThreads, Mode::Tokio] {
                if !(mode == Mode::Tokio && api == Api::Sync) {
                    cases.push((name, guest, mode, prepared.clone()));
                }
            }
        }
    }

    println!(
        "store per request on N threads, {rounds} interleaved rounds of {} ms, medians; \
         tokio: {tasks} request tasks at once",
        length.as_millis()
    );
    // results[case][thread count] = per-round (requests/s per thread, CPU µs per request)
    let mut results = vec![vec![Vec::new(); threads.len()]; cases.len()];
    for _ in 0..rounds {
        for (c, (_, _, mode, prepared)) in cases.iter().enumerate() {
            for (t, &n) in threads.iter().enumerate() {
                let run = match mode {
                    Mode::OsThreads => run_os_threads(prepared, n, length),
                    Mode::Tokio => run_tokio(prepared, n, tasks, length),
                };
                let per_thread = run.requests as f64 / run.wall.as_secs_f64() / n as f64;
                let cpu_per_request = run.cpu.as_secs_f64() * 1e6 / run.requests as f64;
                results[c][t].push((per_thread, cpu_per_request));
            }
        }
    }

    println!();
    print!("| guest | variant | mode |");
    for n in &threads {
        print!(" req/s/thread, N={n} | CPU µs/req, N={n} |");
    }
    for n in threads.iter().skip(1) {
        print!(
            " req/s/thread ×, N={n} vs {0} | CPU/req ×, N={n} vs {0} |",
            threads[0]
        );
    }
    println!();
    println!("|---|---|---|{}", "---:|".repeat(4 * threads.len() - 2));
    for (c, (name, guest, mode, _)) in cases.iter().enumerate() {
        let mode = match mode {
            Mode::OsThreads => "os threads",
            Mode::Tokio => "tokio",
        };
        print!("| {} | {name} | {mode} |", guest.name());
        let medians: Vec<(f64, f64)> = results[c]
            .iter()
            .map(|runs| {
                let rate: Vec<f64> = runs.iter().map(|r| r.0).collect();
                let cpu: Vec<f64> = runs.iter().map(|r| r.1).collect();
                (median(&rate), median(&cpu))
            })
            .collect();
        for (rate, cpu) in &medians {
            print!(" {rate:.0} | {cpu:.2} |");
        }
        for (rate, cpu) in medians.iter().skip(1) {
            print!(" {:.2} | {:.2} |", rate / medians[0].0, cpu / medians[0].1);
        }
        println!();
    }
    println!();
    println!("StackPool after the run: {:?}", pool.stats());
}
