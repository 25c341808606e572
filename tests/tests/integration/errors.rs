//! Errors a user can cause: each is an `Err` (or, for a panic, a panic in the awaiting
//! task), and the process goes on.

use async_wasm::prelude::*;
use async_wasm::{Stack, StackPoolError};
use futures::FutureExt;
use tests::{pending, pooled_engine};
use wasmtime::{Caller, Config, Engine, Func, Instance, Linker, Module, Store, Trap};

#[derive(Debug, PartialEq)]
struct NotFound(i32);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {} not found", self.0)
    }
}

impl std::error::Error for NotFound {}

const CALL_HOST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32) (call $host (local.get 0))))"#;

/// Guards our `getN`: its type check, before any call, is ours.
#[tokio::test(flavor = "current_thread")]
async fn a_wrong_signature_is_an_error() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let f = Func::wrap(&mut store, |x: i32| x);
    let getter = f.get_async();
    assert!(getter.get0::<i32>(&store).is_err(), "too few parameters");
    assert!(getter.get2::<i32, i32, i32>(&store).is_err(), "too many");
    assert!(
        getter.get1::<i64, i32>(&store).is_err(),
        "wrong parameter type"
    );
    let err = getter.get1::<i32, f32>(&store).unwrap_err();
    assert!(format!("{err:?}").contains("type mismatch"), "{err:?}");
    assert_eq!(
        getter.get1::<i32, i32>(&store)?.call(&mut store, 3).await?,
        3
    );
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_host_error_comes_back_with_its_type() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, CALL_HOST)?;
    let mut store = Store::new(&engine, ());
    let host = Func::wrap_async1(&mut store, |_: Caller<'_, ()>, key: i32| {
        Box::new(async move {
            pending(1).await;
            if key < 0 {
                Err(wasmtime::Error::new(NotFound(key)))
            } else {
                Ok(key)
            }
        })
    });
    let instance = Instance::new_async(&mut store, &module, &[host.into()]).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i32>(&store)?;
    let err = run.call(&mut store, -4).await.unwrap_err();
    assert_eq!(err.downcast_ref::<NotFound>(), Some(&NotFound(-4)));
    assert_eq!(
        run.call(&mut store, 4).await?,
        4,
        "the store is usable after"
    );
    Ok(())
}

/// Guards our call path: `call` hands back wasmtime's trap as it is, downcastable.
#[tokio::test(flavor = "current_thread")]
async fn a_trap_comes_back_as_a_trap() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (func (export "div") (param i32) (result i32)
            (i32.div_s (i32.const 1) (local.get 0))))"#,
    )?;
    let mut store = Store::new(&engine, ());
    let instance = Instance::new_async(&mut store, &module, &[]).await?;
    let div = instance.get_func(&mut store, "div").unwrap();
    let div = div.get_async().get1::<i32, i32>(&store)?;
    let err = div.call(&mut store, 0).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::IntegerDivisionByZero)
    );
    assert_eq!(div.call(&mut store, 1).await?, 1);
    Ok(())
}

async fn endless_recursion(engine: &Engine) -> wasmtime::Result<()> {
    let module = Module::new(
        engine,
        r#"(module
            (import "env" "host" (func $host (param i32) (result i32)))
            (func $down (export "down") (param i32) (result i32)
                (i32.add (call $down (call $host (local.get 0))) (i32.const 1))))"#,
    )?;
    let mut store = Store::new(engine, ());
    let host = Func::wrap_async1(&mut store, |_: Caller<'_, ()>, x: i32| {
        Box::new(async move { x + 1 })
    });
    let instance = Instance::new_async(&mut store, &module, &[host.into()]).await?;
    let down = instance.get_func(&mut store, "down").unwrap();
    let down = down.get_async().get1::<i32, i32>(&store)?;
    let err = down.call(&mut store, 0).await.unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::StackOverflow));
    Ok(())
}

/// Guards our stacks: wasmtime finds its stack limit inside a pooled stack, small ones
/// included, and the stack goes back to the pool after the trap. The default engine is the
/// control: pooled stacks must behave as wasmtime's own do.
#[tokio::test(flavor = "current_thread")]
async fn endless_recursion_is_a_stack_overflow_trap() -> wasmtime::Result<()> {
    endless_recursion(&Engine::default()).await?;
    let pool = StackPool::new(1 << 20);
    endless_recursion(&pooled_engine(&pool)).await?;
    // A small pool, with wasm's share of the stack lowered to fit it.
    let pool = StackPool::new(256 * 1024);
    let mut config = Config::new();
    config.max_wasm_stack(128 * 1024);
    pool.configure(&mut config)?;
    endless_recursion(&Engine::new(&config)?).await?;
    assert_eq!(pool.stats().in_use, 0);
    Ok(())
}

#[test]
fn a_pool_smaller_than_max_wasm_stack_is_an_engine_error() {
    let pool = StackPool::new(64 * 1024);
    // Through the pool, the error says which settings to change, in the pool's terms.
    let err = pool.engine(&Config::new()).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<StackPoolError>(),
        Some(StackPoolError::MaxWasmStack { stack_size: 65536 })
    ));
    let message = format!("{err:?}");
    assert!(message.contains("StackPool of 64 KiB stacks"), "{message}");
    assert!(message.contains("Config::max_wasm_stack"), "{message}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_in_a_host_future_resumes_in_the_awaiting_task() -> wasmtime::Result<()> {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, CALL_HOST)?;
    let mut linker = Linker::new(&engine);
    linker.func_wrap_async1("env", "host", |_: Caller<'_, ()>, x: i32| {
        Box::new(async move {
            pending(2).await;
            if x == 0 {
                panic!("host panicked on purpose");
            }
            x
        })
    })?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i32>(&store)?;
    let caught = std::panic::AssertUnwindSafe(run.call(&mut store, 0))
        .catch_unwind()
        .await;
    let payload = caught.expect_err("the panic reaches the awaiting task");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"host panicked on purpose")
    );
    drop(store);
    assert_eq!(pool.stats().in_use, 0);

    // On a spawned task the panic is the task's, and the runtime goes on.
    let (engine2, linker2, module2) = (engine.clone(), linker.clone(), module.clone());
    let joined = tokio::spawn(async move {
        let mut store = Store::new(&engine2, ());
        let instance = linker2.instantiate_async(&mut store, &module2).await?;
        let run = instance.get_func(&mut store, "run").unwrap();
        run.get_async()
            .get1::<i32, i32>(&store)?
            .call(&mut store, 0)
            .await
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(pool.stats().in_use, 0);
    Ok(())
}

#[test]
fn invalid_stack_sizes_are_errors() {
    assert!(Stack::new(0).is_err());
    assert!(matches!(
        Stack::new(1 << 40),
        Err(StackPoolError::InvalidSize {
            size: 0x100_0000_0000
        })
    ));
    assert!(matches!(
        StackPool::builder(0).build(),
        Err(StackPoolError::InvalidSize { size: 0 })
    ));
    let pool = StackPool::new(1 << 16);
    assert!(matches!(
        pool.put(Stack::new(1 << 17).unwrap()),
        Err(StackPoolError::SizeMismatch {
            expected: 0x1_0000,
            found: 0x2_0000
        })
    ));
}

/// Pins the `# Panics` sections of `getN`, `call` and `FuncExt::call_async`: a function used
/// with another store is a panic (wasmtime's check, which those docs promise), not an `Err`.
#[test]
#[should_panic(expected = "object used with the wrong store")]
fn a_function_of_another_store_panics_as_documented() {
    let engine = Engine::default();
    let mut owner = Store::new(&engine, ());
    let other = Store::new(&engine, ());
    let f = Func::wrap(&mut owner, |x: i32| x);
    let _ = f.get_async().get1::<i32, i32>(&other);
}
