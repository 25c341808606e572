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
