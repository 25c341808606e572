//! Host functions written against async-wasm under another crate name (`aw`): this crate has
//! no `async_wasm` in scope, so `#[async_host(crate = "aw")]`'s expansion must name only the
//! path it was given. The test is in `tests/renamed.rs`.
#![deny(warnings)]

use aw::async_host;
use wasmtime::Caller;

/// Caller-less, numbers.
#[async_host(crate = "aw")]
pub async fn double(x: i32) -> i32 {
    futures::future::ready(()).await;
    x * 2
}

/// With a caller and data, thread-bound: every part of the expansion.
#[async_host(crate = "::aw", local)]
pub async fn repeat(caller: Caller<'_, i32>, text: String) -> String {
    text.repeat(*caller.data() as usize)
}
