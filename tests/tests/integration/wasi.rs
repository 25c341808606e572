//! WASI and async-wasm on one `Linker`: a guest compiled from C (`guests/src/wasi_guest.c`)
//! prints with `printf`, reads a WASI clock, and calls an async host function that awaits a
//! tokio timer and returns a string, all under tokio, as a plugin host runs its plugins.

use std::time::Duration;

use async_wasm::prelude::*;
use tests::c_guests::WASI_GUEST;
use tests::{instantiate_reactor, pooled_engine};
use wasmtime::{Caller, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// The store's data: WASI's state beside the host's own.
struct Plugin {
    wasi: WasiP1Ctx,
    lookups: u32,
}

#[async_host]
async fn lookup(mut caller: Caller<'_, Plugin>, key: String) -> wasmtime::Result<String> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    caller.data_mut().lookups += 1;
    match key.as_str() {
        "answer" => Ok("42".to_string()),
        other => wasmtime::bail!("no key {other:?}"),
    }
}

async fn run_plugin() -> wasmtime::Result<()> {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let mut linker: Linker<Plugin> = Linker::new(&engine);
    p1::add_to_linker_async(&mut linker, |plugin| &mut plugin.wasi)?;
    linker.func_wrap_host("env", "lookup", lookup)?;
    let module = Module::new(&engine, WASI_GUEST)?;

    let stdout = MemoryOutputPipe::new(4096);
    let wasi = WasiCtxBuilder::new().stdout(stdout.clone()).build_p1();
    let mut store = Store::new(&engine, Plugin { wasi, lookups: 0 });
    let instance = instantiate_reactor(&mut store, &linker, &module).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let took_ms = run
        .get_async()
        .get0::<i32>(&store)?
        .call(&mut store)
        .await?;

    assert_eq!(store.data().lookups, 1);
    assert!(
        took_ms >= 20,
        "the guest's clock saw the host's 20 ms wait: {took_ms} ms"
    );
    let printed = String::from_utf8(stdout.contents().to_vec())?;
    assert_eq!(printed, format!("lookup(answer) = 42 after {took_ms} ms\n"));
    drop(store);
    assert_eq!(pool.stats().in_use, 0);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn printf_a_clock_and_async_imports_on_current_thread_tokio() -> wasmtime::Result<()> {
    run_plugin().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_multi_thread_tokio() -> wasmtime::Result<()> {
    tokio::spawn(run_plugin()).await?
}
