//! Long-running guests must not starve the executor: with an `EpochTicker` and an async
//! yield deadline, a spinning guest gives its thread back and a sibling task runs on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_wasm::EpochTicker;
use async_wasm::prelude::*;
use wasmtime::{Config, Engine, Func, Instance, Module, Store};

/// Spins until the host clock passes the deadline it is given (in ms), calling nothing that
/// could suspend it.
const SPIN: &str = r#"(module
    (import "env" "now_ms" (func $now (result i64)))
    (func (export "spin") (param i64) (result i64)
        (local i64)
        (loop $again
            (local.set 1 (i64.add (local.get 1) (i64.const 1)))
            (br_if $again (i64.lt_u (call $now) (local.get 0))))
        (local.get 1)))"#;

const SPIN_MS: i64 = 300;
const SIBLING_SLEEP: Duration = Duration::from_millis(5);

/// Runs a 300 ms spinning guest beside a task that sleeps 5 ms on a current-thread runtime.
/// Returns whether the sibling finished while the guest still spun, and how late it woke.
async fn spin_beside_a_timer(engine: &Engine, yielding: bool) -> (bool, Duration) {
    let module = Module::new(engine, SPIN).unwrap();
    let start = Instant::now();
    let mut store = Store::new(engine, ());
    if yielding {
        store.epoch_deadline_async_yield_and_update(1);
    }
    let now_ms = Func::wrap(&mut store, move || start.elapsed().as_millis() as i64);
    let instance = Instance::new_async(&mut store, &module, &[now_ms.into()])
        .await
        .unwrap();
    let spin = instance.get_func(&mut store, "spin").unwrap();
    let spin = spin.get_async().get1::<i64, i64>(&store).unwrap();

    let guest_done = Arc::new(AtomicBool::new(false));
    let sibling = tokio::spawn({
        let guest_done = guest_done.clone();
        async move {
            let asleep = Instant::now();
            tokio::time::sleep(SIBLING_SLEEP).await;
            (
                !guest_done.load(Ordering::SeqCst),
                asleep.elapsed() - SIBLING_SLEEP,
            )
        }
    });
    // Let the sibling start its timer before the guest takes the thread.
    tokio::task::yield_now().await;
    let iterations = spin.call(&mut store, SPIN_MS).await.unwrap();
    guest_done.store(true, Ordering::SeqCst);
    assert!(iterations > 0);
    sibling.await.unwrap()
}

/// An engine with epoch interruption, and the ticker that advances its epoch every ms.
fn epoch_engine() -> (Engine, EpochTicker) {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let ticker = EpochTicker::start(&engine, Duration::from_millis(1)).unwrap();
    (engine, ticker)
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_yields_to_a_sibling_task() {
    let (engine, _ticker) = epoch_engine();

    let (on_time, late) = spin_beside_a_timer(&engine, true).await;
    println!("with epoch yields, the 5 ms timer woke {late:?} late");
    assert!(
        on_time,
        "the sibling ran while the guest spun (it woke {late:?} late)"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn without_yields_the_sibling_waits_for_the_guest() {
    // The control: the same guest on an engine without epochs holds the thread to the end.
    let (on_time, late) = spin_beside_a_timer(&Engine::default(), false).await;
    println!("without epoch yields, the 5 ms timer woke {late:?} late");
    assert!(!on_time, "the sibling could only run after the guest");
}
