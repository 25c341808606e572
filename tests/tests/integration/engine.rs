//! `AsyncEngine`: each step of the per-request recipe that, done by hand, failed silently
//! or hung, is done (or refused with a clear error) by the builder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_wasm::prelude::*;
use async_wasm::{Allocation, AsyncEngine, AsyncEngineBuilder, DeadlineExceeded, EngineError};
use tests::c_guests::DATA_GUEST;
use tests::{instantiate_reactor, pending};
use wasmtime::{Caller, Config, Linker, Module, Trap};

const SPIN: &str = r#"(module
    (import "env" "tick" (func $tick))
    (func (export "spin") (loop $forever (call $tick) (br $forever))))"#;

const ECHO: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (memory 1)
    (func (export "run") (param i32) (result i32) (call $host (local.get 0))))"#;

fn echo_linker(engine: &AsyncEngine) -> Linker<()> {
    let mut linker = Linker::new(engine.engine());
    linker
        .func_wrap_async1("env", "host", |_: Caller<'_, ()>, x: i32| {
            Box::new(async move {
                pending(1).await;
                x + 1
            })
        })
        .unwrap();
    linker
}

async fn request(engine: &AsyncEngine, pre: &wasmtime::InstancePre<()>) -> wasmtime::Result<i32> {
    let mut store = engine.store(());
    let instance = pre.instantiate_async(&mut store).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    run.get_async()
        .get1::<i32, i32>(&store)?
        .call(&mut store, 41)
        .await
}

/// Forgetting `pool.configure` ran every request on default stacks; the builder cannot
/// forget it.
#[tokio::test(flavor = "current_thread")]
async fn the_stack_pool_serves_every_request() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .allocation(Allocation::StackPool)
        .build()?;
    let pre = echo_linker(&engine).instantiate_pre(&Module::new(engine.engine(), ECHO)?)?;
    for _ in 0..10 {
        assert_eq!(request(&engine, &pre).await?, 42);
    }
    let stats = engine.stack_pool().unwrap().stats();
    assert_eq!((stats.created, stats.reused, stats.in_use), (1, 9, 0));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn the_pooling_allocator_serves_requests_and_bounds_them() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .allocation(Allocation::Pooling)
        .max_stores(2)
        .max_memory_size(1 << 20)
        .zeroed_stacks(true)
        .build()?;
    assert!(engine.stack_pool().is_none());
    assert!(engine.engine().pooling_allocator_metrics().is_some());
    let pre = echo_linker(&engine).instantiate_pre(&Module::new(engine.engine(), ECHO)?)?;
    assert_eq!(request(&engine, &pre).await?, 42);
    // Two stores hold instances; a third is refused with wasmtime's typed error.
    let (mut a, mut b, mut c) = (engine.store(()), engine.store(()), engine.store(()));
    pre.instantiate_async(&mut a).await?;
    pre.instantiate_async(&mut b).await?;
    let err = pre.instantiate_async(&mut c).await.unwrap_err();
    assert!(
        err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some(),
        "{err:?}"
    );
    drop((a, b));
    pre.instantiate_async(&mut c).await?;
    Ok(())
}

/// A stack smaller than `max_wasm_stack` is refused when the engine is made, with a message
/// that names the settings, under both allocations.
#[test]
fn a_stack_too_small_for_wasm_is_a_clear_error() {
    for allocation in [Allocation::Pooling, Allocation::StackPool] {
        let err = AsyncEngine::builder()
            .allocation(allocation)
            .stack_size(64 << 10)
            .build()
            .unwrap_err();
        let message = format!("{err:?}");
        assert!(message.contains("max_wasm_stack"), "{message}");
        assert!(message.contains("64 KiB"), "{message}");
    }
    let err = AsyncEngine::builder()
        .allocation(Allocation::StackPool)
        .max_memory_size(1 << 20)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ResourceLimiter"), "{err}");
}

fn refused(builder: AsyncEngineBuilder) -> EngineError {
    let err = builder.build().unwrap_err();
    err.downcast_ref::<EngineError>()
        .unwrap_or_else(|| panic!("not an EngineError: {err:?}"))
        .clone()
}

/// Each setting has one behaviour: what would be ignored (a pooling setting under
/// `StackPool`) or would refuse every store (a zero) is an error of its own.
#[test]
fn settings_without_an_effect_are_refused() {
    use std::time::Duration as D;
    let stack_pool = || AsyncEngine::builder().allocation(Allocation::StackPool);
    for setting in ["max_memory_size", "memory_keep_resident", "pagemap_scan"] {
        let builder = match setting {
            "max_memory_size" => stack_pool().max_memory_size(1 << 20),
            "pagemap_scan" => stack_pool().pagemap_scan(true),
            _ => stack_pool().memory_keep_resident(16 << 10),
        };
        assert_eq!(
            refused(builder),
            EngineError::NotUnder {
                setting,
                allocation: Allocation::StackPool
            }
        );
    }
    let zeros = [
        ("max_stores", AsyncEngine::builder().max_stores(0)),
        ("fuel", AsyncEngine::builder().fuel(0)),
        ("yield_every", AsyncEngine::builder().yield_every(D::ZERO)),
        ("timeout", AsyncEngine::builder().timeout(D::ZERO)),
        (
            "acquire_timeout",
            AsyncEngine::builder().acquire_timeout(D::ZERO),
        ),
    ];
    for (setting, builder) in zeros {
        assert_eq!(refused(builder), EngineError::Zero { setting });
    }
    // Under Pooling, all three are its own settings.
    AsyncEngine::builder()
        .max_stores(2)
        .memory_keep_resident(16 << 10)
        .pagemap_scan(true)
        .max_memory_size(1 << 20)
        .build()
        .unwrap();
}

type Set = fn(&mut Config);

fn epochs(config: &mut Config) {
    config.epoch_interruption(true);
}

fn fuel(config: &mut Config) {
    config.consume_fuel(true);
}

fn zeroing(config: &mut Config) {
    config.async_stack_zeroing(true);
}

/// A `Config` that turns on what the builder owns was silently overridden (epochs) or left
/// every store without what it needs (fuel): refused unless the builder was asked for the
/// same, on both allocations.
#[test]
fn a_config_cannot_turn_on_what_the_builder_owns() {
    for allocation in [Allocation::Pooling, Allocation::StackPool] {
        let with = |set: Set| {
            let mut config = Config::new();
            set(&mut config);
            AsyncEngine::builder()
                .allocation(allocation)
                .max_stores(2)
                .config(config)
        };
        let cases: [(Set, &str, &str); 3] = [
            (
                epochs,
                "Config::epoch_interruption",
                "yield_every or timeout",
            ),
            (fuel, "Config::consume_fuel", "fuel"),
            (zeroing, "Config::async_stack_zeroing", "zeroed_stacks"),
        ];
        for (set, config_setting, builder_setting) in cases {
            assert_eq!(
                refused(with(set)),
                EngineError::OwnedByBuilder {
                    config_setting,
                    builder_setting
                },
                "{allocation:?}"
            );
        }
        // Asked of the builder too, the same setting is no conflict.
        with(cases[0].0)
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        with(cases[1].0).fuel(1_000).build().unwrap();
        with(cases[2].0).zeroed_stacks(true).build().unwrap();
    }
}

/// Fuel: every store starts with the builder's amount, and a guest that uses it up traps
/// with `OutOfFuel`; the next store starts full again.
#[tokio::test(flavor = "current_thread")]
async fn fuel_bounds_a_guests_work() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder().fuel(100_000).build()?;
    let module = Module::new(engine.engine(), SPIN)?;
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap("env", "tick", || {})?;
    for _ in 0..2 {
        let mut store = engine.acquire_store(()).await?;
        assert_eq!(store.get_fuel()?, 100_000);
        let instance = linker.instantiate_async(&mut store, &module).await?;
        let spin = instance.get_func(&mut store, "spin").unwrap();
        let err = spin
            .get_async()
            .get0::<()>(&store)?
            .call(&mut store)
            .await
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<Trap>(),
            Some(&Trap::OutOfFuel),
            "{err:?}"
        );
    }
    Ok(())
}

/// `restart_timeout` sets only its own engine's stores.
#[test]
fn restart_timeout_refuses_a_store_of_another_engine() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    let other = AsyncEngine::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    let mut store = other.store(());
    assert_eq!(
        engine.restart_timeout(&mut store),
        Err(EngineError::ForeignStore)
    );
    let mut own = engine.store(());
    engine.restart_timeout(&mut own)?;
    Ok(())
}

/// A spinning guest gives its thread back every tick: a sibling task on the same
/// current-thread runtime finishes while the guest still spins. (By hand, epochs without a
/// running clock hung the thread for good.)
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_yields_to_its_siblings() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .yield_every(Duration::from_millis(1))
        .timeout(Duration::from_secs(30))
        .build()?;
    let module = Module::new(engine.engine(), SPIN)?;
    let sibling_done = Arc::new(AtomicBool::new(false));
    let mut linker = Linker::new(engine.engine());
    let seen = sibling_done.clone();
    // The guest stops spinning once it sees that the sibling ran.
    linker.func_wrap("env", "tick", move || -> wasmtime::Result<()> {
        if seen.load(Ordering::SeqCst) {
            wasmtime::bail!("the sibling ran");
        }
        Ok(())
    })?;
    let mut store = engine.store(());
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let spin = instance.get_func(&mut store, "spin").unwrap();
    let spin = spin.get_async().get0::<()>(&store)?;
    let done = sibling_done.clone();
    let sibling = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        done.store(true, Ordering::SeqCst);
    });
    let err = spin.call(&mut store).await.unwrap_err();
    assert!(format!("{err:?}").contains("the sibling ran"), "{err:?}");
    sibling.await.unwrap();
    Ok(())
}

/// The timeout interrupts wasm: a guest in an endless loop stops with `DeadlineExceeded`,
/// on a current-thread runtime, without any timer around the call. With yields and
/// without.
#[tokio::test(flavor = "current_thread")]
async fn the_timeout_stops_an_endless_loop() -> wasmtime::Result<()> {
    for yields in [false, true] {
        let mut builder = AsyncEngine::builder().timeout(Duration::from_millis(50));
        if yields {
            builder = builder.yield_every(Duration::from_millis(1));
        }
        let engine = builder.build()?;
        let module = Module::new(engine.engine(), SPIN)?;
        let mut linker = Linker::new(engine.engine());
        linker.func_wrap("env", "tick", || {})?;
        let mut store = engine.store(());
        let instance = linker.instantiate_async(&mut store, &module).await?;
        let spin = instance.get_func(&mut store, "spin").unwrap();
        let err = spin
            .get_async()
            .get0::<()>(&store)?
            .call(&mut store)
            .await
            .unwrap_err();
        let deadline = err
            .downcast_ref::<DeadlineExceeded>()
            .unwrap_or_else(|| panic!("not a DeadlineExceeded: {err:?}"));
        assert_eq!(deadline.timeout(), Duration::from_millis(50));
    }
    Ok(())
}

/// A store that serves several requests gets its time back with `restart_timeout`.
#[tokio::test(flavor = "current_thread")]
async fn restart_timeout_gives_a_long_lived_store_its_time_back() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .timeout(Duration::from_millis(100))
        .build()?;
    let module = Module::new(engine.engine(), SPIN)?;
    let mut linker = Linker::new(engine.engine());
    // Stops the guest with an error of its own after 2,000 calls (well within the time).
    linker.func_wrap(
        "env",
        "tick",
        |mut caller: Caller<'_, u32>| -> wasmtime::Result<()> {
            *caller.data_mut() += 1;
            if *caller.data() > 2_000 {
                wasmtime::bail!("done");
            }
            Ok(())
        },
    )?;
    let mut store = engine.store(0_u32);
    tokio::time::sleep(Duration::from_millis(150)).await; // the store's time runs out
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let spin = instance.get_func(&mut store, "spin").unwrap();
    let spin = spin.get_async().get0::<()>(&store)?;
    let err = spin.call(&mut store).await.unwrap_err();
    assert!(err.downcast_ref::<DeadlineExceeded>().is_some(), "{err:?}");

    engine.restart_timeout(&mut store)?;
    *store.data_mut() = 0;
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let spin = instance.get_func(&mut store, "spin").unwrap();
    let err = spin
        .get_async()
        .get0::<()>(&store)?
        .call(&mut store)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("done"), "{err:?}");
    Ok(())
}

/// With epochs on, a store made by hand keeps wasmtime's default deadline, already passed:
/// a C reactor's `_initialize` traps at its first check. Stores from `AsyncEngine::store`
/// start with a deadline.
#[tokio::test(flavor = "current_thread")]
async fn stores_from_the_engine_run_a_reactors_initialize() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .yield_every(Duration::from_millis(1))
        .build()?;
    let module = Module::new(engine.engine(), DATA_GUEST)?;
    let mut linker = Linker::new(engine.engine());
    linker.define_unknown_imports_as_traps(&module)?;

    let mut by_hand = wasmtime::Store::new(engine.engine(), ());
    let err = instantiate_reactor(&mut by_hand, &linker, &module)
        .await
        .unwrap_err();
    assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::Interrupt));

    let mut store = engine.store(());
    instantiate_reactor(&mut store, &linker, &module).await?;

    // The way out for a store made by hand: the engine sets its deadline.
    let mut by_hand = wasmtime::Store::new(engine.engine(), ());
    engine.restart_timeout(&mut by_hand)?;
    instantiate_reactor(&mut by_hand, &linker, &module).await?;
    Ok(())
}

/// The clock runs as long as a store needs it, even after the engine handle is gone.
#[tokio::test(flavor = "current_thread")]
async fn the_clock_outlives_the_engine_handle_while_stores_live() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .timeout(Duration::from_millis(20))
        .build()?;
    let module = Module::new(engine.engine(), SPIN)?;
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap("env", "tick", || {})?;
    let mut store = engine.store(());
    drop(engine);
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let spin = instance.get_func(&mut store, "spin").unwrap();
    let err = spin
        .get_async()
        .get0::<()>(&store)?
        .call(&mut store)
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<DeadlineExceeded>().is_some(), "{err:?}");
    Ok(())
}

/// A store's data: the gate its guest's one `wait` waits for.
type Gate = Option<tokio::sync::oneshot::Receiver<()>>;

/// A linker with `env.wait`, pending until the test opens the store's gate.
fn gated_linker(engine: &AsyncEngine) -> wasmtime::Result<Linker<Gate>> {
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap_async0("env", "wait", |mut caller: Caller<'_, Gate>| {
        let gate = caller.data_mut().take();
        Box::new(async move {
            gate.expect("one wait per store").await.expect("opened");
        })
    })?;
    Ok(linker)
}

/// A store whose host function handed data to the guest holds a second stack (the nested
/// call into the guest's allocator) until its call ends: `max_stores` counts two stacks
/// per store, so two such stores suspended at once fit `max_stores(2)`.
#[tokio::test(flavor = "current_thread")]
async fn max_stores_makes_room_for_the_allocator_stack() -> wasmtime::Result<()> {
    #[async_host]
    async fn greet(name: String) -> String {
        format!("hi {name}")
    }
    let engine = AsyncEngine::builder()
        .allocation(Allocation::StackPool)
        .max_stores(2)
        .build()?;
    let mut linker = gated_linker(&engine)?;
    linker.func_wrap_host("env", "greet", greet)?;
    let module = Module::new(
        engine.engine(),
        r#"(module
            (import "env" "greet" (func $greet (param i32 i32) (result i64)))
            (import "env" "wait" (func $wait))
            (memory (export "memory") 1)
            (data (i32.const 0) "you")
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
            (func (export "run") (result i64)
                (local i64)
                (local.set 0 (call $greet (i32.const 0) (i32.const 3)))
                (call $wait)
                (local.get 0)))"#,
    )?;
    let pre = linker.instantiate_pre(&module)?;
    let mut gates = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..2 {
        let (open, gate) = tokio::sync::oneshot::channel();
        gates.push(open);
        let mut store = engine.store(Some(gate));
        let instance = pre.instantiate_async(&mut store).await?;
        let run = instance.get_func(&mut store, "run").unwrap();
        let run = run.get_async().get0::<i64>(&store)?;
        calls.push(Box::pin(async move { run.call(&mut store).await }));
    }
    for call in &mut calls {
        assert!(tests::poll_once(call).is_pending());
    }
    let pool = engine.stack_pool().unwrap();
    assert_eq!(pool.stats().in_use, 4, "two stacks per suspended store");
    for open in gates {
        open.send(()).unwrap();
    }
    for call in calls {
        assert_eq!(call.await?, (6 << 32) | 1024, "\"hi you\" at 1024");
    }
    Ok(())
}

/// What the timeout does not bound, as its documentation says: a host future that is
/// pending past the deadline keeps the call waiting (the deadline is checked while wasm
/// runs); the time counts, and the guest is stopped as soon as it runs again.
#[tokio::test(flavor = "current_thread")]
async fn the_timeout_is_noticed_when_the_guest_runs_again() -> wasmtime::Result<()> {
    let engine = AsyncEngine::builder()
        .timeout(Duration::from_millis(20))
        .build()?;
    let linker = gated_linker(&engine)?;
    let module = Module::new(
        engine.engine(),
        r#"(module
            (import "env" "wait" (func $wait))
            (func (export "run") (call $wait) (loop $forever (br $forever))))"#,
    )?;
    let (open, gate) = tokio::sync::oneshot::channel();
    let mut store = engine.store(Some(gate));
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get0::<()>(&store)?;
    let mut call = Box::pin(run.call(&mut store));
    assert!(tests::poll_once(&mut call).is_pending());
    tokio::time::sleep(Duration::from_millis(60)).await; // past the deadline
    assert!(
        tests::poll_once(&mut call).is_pending(),
        "still waiting in the host"
    );
    open.send(()).unwrap();
    let err = call.await.unwrap_err();
    assert!(err.downcast_ref::<DeadlineExceeded>().is_some(), "{err:?}");
    Ok(())
}
