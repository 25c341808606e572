//! A host function that calls back into wasm through its `Caller`, while suspended in
//! between.

use async_wasm::prelude::*;
use tests::{pending, pooled_engine};
use wasmtime::{Caller, Linker, Module, Store};

const GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "square") (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
    (func (export "run") (param i32) (result i32)
        (i32.add (call $host (local.get 0)) (i32.const 1))))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_function_calls_back_into_wasm() -> wasmtime::Result<()> {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, GUEST)?;
    let mut linker = Linker::new(&engine);
    linker.func_wrap_async1("env", "host", |mut caller: Caller<'_, ()>, x: i32| {
        Box::new(async move {
            pending(1).await;
            let square = caller
                .get_export("square")
                .and_then(|e| e.into_func())
                .ok_or_else(|| wasmtime::format_err!("no export `square`"))?;
            let square = square.get_async().get1::<i32, i32>(&caller)?;
            let y = square.call(&mut caller, x).await?;
            tokio::task::yield_now().await;
            wasmtime::Result::<i32>::Ok(y * 10)
        })
    })?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i32>(&store)?;
    assert_eq!(run.call(&mut store, 3).await?, 91);
    assert_eq!(run.call(&mut store, 4).await?, 161);
    drop(store);
    assert_eq!(pool.stats().in_use, 0);
    Ok(())
}
