//! Host headroom: host functions run on the guest's stack, below whatever wasm used of its
//! `max_wasm_stack`. At the documented minimum between the two, a guest that recursed as
//! deep as wasm may and then hands a host function the deepest JSON serde_json accepts
//! gets an answer, not a SIGSEGV of the whole process.

use async_wasm::data::{DataError, Json};
use async_wasm::prelude::*;
use async_wasm::{Allocation, AsyncEngine, AsyncEngineBuilder, EngineError, MIN_HOST_STACK};
use serde::Deserialize;
use wasmtime::{Config, Instance, Linker, Module, Store, Trap};

/// The deepest JSON serde_json decodes: its recursion limit of 128 refuses the 128th level,
/// with an error, before it costs more stack.
const JSON_DEPTH: usize = 127;

/// A recursive struct, decoded through its derived `Deserialize`, frame by frame.
#[derive(Deserialize)]
struct Node {
    next: Option<Box<Node>>,
}

impl Node {
    fn depth(&self) -> usize {
        let mut depth = 1;
        let mut node = self;
        while let Some(next) = &node.next {
            depth += 1;
            node = next;
        }
        depth
    }
}

fn value_depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[async_host]
async fn value(json: Json<serde_json::Value>) -> i32 {
    tokio::task::yield_now().await;
    value_depth(&json) as i32
}

#[async_host]
async fn node(json: Json<Node>) -> i32 {
    tokio::task::yield_now().await;
    json.depth() as i32
}

/// `run(ptr, len, frames)` recurses `frames` deep in wasm, then passes the data at
/// `ptr..ptr + len` to the import the module was made for.
fn guest(import: &str) -> String {
    format!(
        r#"(module
    (import "env" "{import}" (func $host (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
    (func $run (export "run") (param i32 i32 i32) (result i32)
        (if (result i32) (i32.eqz (local.get 2))
            (then (call $host (local.get 0) (local.get 1)))
            (else (call $run (local.get 0) (local.get 1)
                (i32.sub (local.get 2) (i32.const 1)))))))"#
    )
}

fn deep_array() -> String {
    format!("{}{}", "[".repeat(JSON_DEPTH), "]".repeat(JSON_DEPTH))
}

fn deep_nodes() -> String {
    // JSON_DEPTH objects: the innermost has `null` for its `next`.
    format!(
        "{}null{}",
        r#"{"next":"#.repeat(JSON_DEPTH),
        "}".repeat(JSON_DEPTH)
    )
}

/// One call on a fresh instance: `Ok(depth)` from the host, or the error.
async fn call(
    store: &dyn Fn() -> Store<()>,
    linker: &Linker<()>,
    module: &Module,
    json: &str,
    frames: i32,
) -> wasmtime::Result<i32> {
    let mut store = store();
    let instance: Instance = linker.instantiate_async(&mut store, module).await?;
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    memory.write(&mut store, 1024, json.as_bytes())?;
    let run = instance.get_func(&mut store, "run").unwrap();
    run.get_async()
        .get3::<i32, i32, i32, i32>(&store)?
        .call(&mut store, 1024, json.len() as i32, frames)
        .await
}

/// The deepest the guest can recurse before its call to the host, found by bisection over
/// fresh instances: each call that does not overflow wasm's stack decodes the JSON at that
/// depth, so the last ones decode it with no more than the headroom below them.
async fn deepest_call(
    store: &dyn Fn() -> Store<()>,
    linker: &Linker<()>,
    module: &Module,
    json: &str,
) -> i32 {
    let overflows = |result: &wasmtime::Result<i32>| match result {
        Ok(depth) => {
            assert_eq!(*depth as usize, JSON_DEPTH);
            false
        }
        Err(err) => {
            let trap = err.downcast_ref::<Trap>();
            assert_eq!(trap, Some(&Trap::StackOverflow), "{err:#}");
            true
        }
    };
    let (mut fits, mut overflow) = (0, 1);
    while !overflows(&call(store, linker, module, json, overflow).await) {
        fits = overflow;
        overflow *= 2;
    }
    while overflow - fits > 1 {
        let mid = fits + (overflow - fits) / 2;
        if overflows(&call(store, linker, module, json, mid).await) {
            overflow = mid;
        } else {
            fits = mid;
        }
    }
    fits
}

/// wasm's share in these tests: small, so that the bisection is short.
const MAX_WASM_STACK: usize = 64 << 10;

fn builder(allocation: Allocation, host: usize) -> AsyncEngineBuilder {
    let mut config = Config::new();
    config.max_wasm_stack(MAX_WASM_STACK);
    AsyncEngine::builder()
        .allocation(allocation)
        .config(config)
        .stack_size(MAX_WASM_STACK + host)
}

/// At exactly the minimum, on both allocations: the deepest JSON serde_json decodes, as a
/// `serde_json::Value` and as a recursive struct, from a guest as deep as wasm may go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_at_the_minimum_headroom() -> wasmtime::Result<()> {
    for allocation in [Allocation::Pooling, Allocation::StackPool] {
        let engine = builder(allocation, MIN_HOST_STACK).max_stores(4).build()?;
        let mut linker = Linker::new(engine.engine());
        linker
            .func_wrap_host("env", "value", value)?
            .func_wrap_host("env", "node", node)?;
        for (import, json) in [("value", deep_array()), ("node", deep_nodes())] {
            let module = Module::new(engine.engine(), guest(import))?;
            let store = || engine.store(());
            let frames = deepest_call(&store, &linker, &module, &json).await;
            assert!(
                frames > 100,
                "{allocation:?} {import}: only {frames} frames"
            );
            // One level deeper is serde_json's error, not more stack.
            let deeper = format!("[{}]", deep_array());
            let err = call(&store, &linker, &module, &deeper, frames).await;
            if import == "value" {
                let err = err.unwrap_err();
                assert!(err.downcast_ref::<DataError>().is_some(), "{err:#}");
            }
        }
    }
    Ok(())
}

/// Less than the minimum is refused, by the builder on both allocations and by
/// `StackPool::engine`, with both settings named.
#[test]
fn less_headroom_is_refused() {
    let short = MIN_HOST_STACK - 4096;
    let expected = EngineError::HostStackTooSmall {
        stack_size: MAX_WASM_STACK + short,
        max_wasm_stack: MAX_WASM_STACK,
    };
    for allocation in [Allocation::Pooling, Allocation::StackPool] {
        let err = builder(allocation, short).build().unwrap_err();
        assert_eq!(
            err.downcast_ref::<EngineError>(),
            Some(&expected),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("stack_size") && message.contains("max_wasm_stack"),
            "{message}"
        );
    }
    let mut config = Config::new();
    config.max_wasm_stack(MAX_WASM_STACK);
    let err = StackPool::new(MAX_WASM_STACK + short)
        .engine(&config)
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<EngineError>(),
        Some(&expected),
        "{err:?}"
    );
    // A stack wasm's share does not even fit in is the same error, on both paths.
    let err = AsyncEngine::builder()
        .stack_size(64 << 10)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<EngineError>(),
            Some(EngineError::HostStackTooSmall {
                stack_size: 65536,
                max_wasm_stack: 524288
            })
        ),
        "{err:?}"
    );
}

/// Measurement only, for the README's figures:
/// `HEADROOM=<bytes> cargo test -p tests --test integration headroom::measure -- --ignored`
/// runs the deep calls with that much below wasm's share, on wasmtime's own stacks with no
/// minimum enforced (too little is a SIGSEGV of the test process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure() -> wasmtime::Result<()> {
    let headroom: usize = std::env::var("HEADROOM")?.parse()?;
    let mut config = Config::new();
    config
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(MAX_WASM_STACK + headroom);
    let engine = wasmtime::Engine::new(&config)?;
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_host("env", "value", value)?
        .func_wrap_host("env", "node", node)?;
    let store = || Store::new(&engine, ());
    for (import, json) in [("value", deep_array()), ("node", deep_nodes())] {
        let module = Module::new(&engine, guest(import))?;
        deepest_call(&store, &linker, &module, &json).await;
    }
    Ok(())
}
