#![deny(unused_must_use)]

use std::time::Duration;

fn main() {
    let engine = wasmtime::Engine::default();
    // Dropped at once: guests would never yield.
    async_wasm::EpochTicker::start(&engine, Duration::from_millis(1)).unwrap();
}
