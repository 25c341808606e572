//! A store per request, every variant side by side in interleaved rounds: the figures the
//! README's ratios quote.
//!
//! Criterion (`benches/per_request.rs`) measures one variant after another; on a shared
//! machine each then meets different load. Here every round runs every variant once, a batch
//! of requests each, timed with the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, which
//! counts the kernel's work for the thread, `mmap` and page faults included, and not the
//! time other processes hold the core). For each variant it prints the median µs per
//! request over the rounds, the interquartile range and min–max, and the ratio to
//! synchronous wasmtime on the tuned pooling allocator (`sync_pooling`), both as a ratio of
//! medians and as the median of per-round ratios.
//!
//! A request is what `benches/per_request.rs` describes: new `Store`, instantiate through an
//! `InstancePre` made once, one call into an export whose host import is pending once, drop
//! the store. Variants, guests and the tuned pooling allocator are in `benches/common`.
//!
//! Run with `cargo bench -p async-wasm --bench per_request_rounds`;
//! `ASYNC_WASM_BENCH_ROUNDS` (default 40) and `ASYNC_WASM_BENCH_BATCH` (requests per
//! variant per round, default 400) change the run, and `ASYNC_WASM_BENCH_ONLY=text` keeps
//! only the variants whose id (`guest[/zeroed]/name`) contains `text`, and the baselines
//! (for a profiler).

#[allow(dead_code)]
mod common;

use common::rounds::{env_usize, print_header, print_row, run_rounds, summarize};
use common::{BASELINE, Guest, Variant, per_request_variants};

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` from it has nothing to select.
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let rounds = env_usize("ASYNC_WASM_BENCH_ROUNDS", 40).max(1);
    let batch = env_usize("ASYNC_WASM_BENCH_BATCH", 400).max(1);

    let mut variants: Vec<Variant> = per_request_variants(false);
    // The zeroed set's synchronous baseline is the same as the plain set's.
    variants.extend(
        per_request_variants(true)
            .into_iter()
            .filter(|variant| variant.zeroing),
    );
    // For profiling one variant: keep the ids containing this (and the baselines).
    if let Ok(only) = std::env::var("ASYNC_WASM_BENCH_ONLY") {
        variants.retain(|v| v.name == BASELINE || v.id().contains(&only));
    }
    println!(
        "per request, {} variants, {rounds} interleaved rounds of {batch} requests each, \
         thread CPU time",
        variants.len()
    );
    let requests: Vec<_> = variants.iter().map(|v| v.request.clone()).collect();
    let samples = run_rounds(&requests, rounds, batch);

    for guest in Guest::ALL {
        let baseline = variants
            .iter()
            .position(|v| v.guest == guest && v.name == BASELINE)
            .expect("every guest has its baseline");
        for zeroing in [false, true] {
            println!();
            println!(
                "{}{}",
                guest.name(),
                if zeroing {
                    ", async_stack_zeroing(true)"
                } else {
                    ""
                }
            );
            print_header("variant", BASELINE);
            if zeroing {
                print_row(BASELINE, &summarize(&samples[baseline], &samples[baseline]));
            }
            for (variant, times) in variants.iter().zip(&samples) {
                if variant.guest == guest && variant.zeroing == zeroing {
                    print_row(&variant.name, &summarize(times, &samples[baseline]));
                }
            }
        }
    }
}
