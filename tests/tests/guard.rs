//! The guard page below a pooled stack, seen from a host function: one that recurses
//! without bound on its store's fiber stack must kill the process cleanly, never run on
//! into the memory below.
//!
//! The test re-runs this test binary as a child, running the ignored test that does the
//! recursion (with an environment variable set, so that `--include-ignored` does not run
//! it in the parent's process), and checks how the child died: killed by wasmtime's abort
//! after its handler found the fault inside the guard range the pool reported, having
//! recursed from a stack of the pool, and without the recursion ever returning.

use std::hint::black_box;
use std::process::Command;

use async_wasm::prelude::*;
use tests::pooled_engine;
use wasmtime::{Caller, Linker, Module, Store};

/// Set in the child process.
const CHILD: &str = "ASYNC_WASM_GUARD_TEST_CHILD";

/// What wasmtime prints before it aborts when host code runs into a fiber's guard page:
/// the fault address was inside the `guard_range` the pool reported.
const WASMTIME_MESSAGE: &str = "execution on async fiber has overflowed its stack";

/// The signal `abort()` raises: 6 on every unix.
const SIGABRT: i32 = 6;

/// Recurses `depth` times with a 1 KiB frame each; called with a depth no stack holds.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 1024]);
    if depth == 0 {
        return u64::from(frame[0]);
    }
    recurse(depth - 1) + u64::from(black_box(frame)[1])
}

/// The child: a host function recursing on the fiber stack of a pooled store.
#[tokio::test(flavor = "current_thread")]
#[ignore = "the child of host_recursion_on_a_pooled_stack_aborts_at_the_guard_page"]
async fn host_recursion_on_a_pooled_stack() {
    assert!(
        std::env::var_os(CHILD).is_some(),
        "run by host_recursion_on_a_pooled_stack_aborts_at_the_guard_page only: it aborts \
         the process it runs in"
    );
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let mut linker = Linker::new(&engine);
    let in_use = pool.clone();
    linker
        .func_wrap_async("env", "recurse", move |_: Caller<'_, ()>, (): ()| {
            let lent = in_use.stats().in_use;
            Box::new(async move {
                let here = 0u8;
                eprintln!("recursing from {:p} with {lent} pooled stack lent", &here);
                recurse(u64::MAX) as i64
            })
        })
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "recurse" (func $recurse (result i64)))
            (func (export "run") (result i64) (call $recurse)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
    let run = instance
        .get_typed_func::<(), i64>(&mut store, "run")
        .unwrap();
    let result = run.call_async(&mut store, ()).await;
    eprintln!("the recursion returned: {result:?}");
}

#[test]
fn host_recursion_on_a_pooled_stack_aborts_at_the_guard_page() {
    use std::os::unix::process::ExitStatusExt;

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host_recursion_on_a_pooled_stack",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("with 1 pooled stack lent"),
        "the child recursed on a stack of the pool: {stderr}"
    );
    assert!(stderr.contains(WASMTIME_MESSAGE), "{stderr}");
    assert_eq!(
        output.status.signal(),
        Some(SIGABRT),
        "the child was aborted by wasmtime, not {:?}: {stderr}",
        output.status
    );
    assert!(!stderr.contains("the recursion returned"), "{stderr}");
}
