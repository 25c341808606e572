//! The `EpochTicker`'s thread lives exactly as long as the ticker. A test binary of its own,
//! so that no other test's ticker is counted.

use std::time::{Duration, Instant};

use async_wasm::EpochTicker;
use wasmtime::Engine;

/// The threads of this process named like the ticker's (`async-wasm-epoch`, of which Linux
/// keeps the first 15 bytes).
#[cfg(target_os = "linux")]
fn epoch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "async-wasm-epoc")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn a_dropped_ticker_leaves_no_thread_behind() {
    let engine = Engine::default();
    assert_eq!(epoch_threads(), 0);
    let ticker = EpochTicker::start(&engine, Duration::from_millis(1)).unwrap();
    // The new thread names itself once it runs; wait for that (bounded).
    let started = Instant::now();
    while epoch_threads() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the ticker's thread never ran"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(epoch_threads(), 1);
    drop(ticker);
    assert_eq!(
        epoch_threads(),
        0,
        "the thread was joined when the ticker dropped"
    );
}

/// The threads named like the wait timer's (`async-wasm-wait`).
#[cfg(target_os = "linux")]
fn wait_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "async-wasm-wait")
        .count()
}

/// `AsyncEngine::acquire_store`'s timeout runs on a thread of its own only while someone
/// waits: none before, one for any number of waits, none a while after the last.
#[cfg(target_os = "linux")]
#[test]
fn the_wait_timer_runs_only_while_someone_waits() {
    use async_wasm::{AcquireError, AsyncEngine};

    let engine = AsyncEngine::builder()
        .max_stores(1)
        .acquire_timeout(Duration::from_millis(5))
        .build()
        .unwrap();
    let held = futures::executor::block_on(engine.acquire_store(())).unwrap();
    assert_eq!(wait_threads(), 0, "nobody waited yet");
    for _ in 0..3 {
        let err = futures::executor::block_on(engine.acquire_store(())).unwrap_err();
        assert!(matches!(err, AcquireError::TimedOut { .. }));
    }
    assert_eq!(wait_threads(), 1, "one timer for every wait");
    // It leaves once nobody has waited for a while (bounded, not timed).
    let started = Instant::now();
    while wait_threads() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the timer thread never left"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(held);
}
