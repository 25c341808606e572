use async_wasm::async_host;
use wasmtime::{ExternRef, Rooted};

// An error value goes with the result's zero value: a non-null reference has none.
#[async_host]
async fn make(caller: wasmtime::Caller<'_, ()>) -> wasmtime::Result<Rooted<ExternRef>> {
    let _ = caller;
    Err(wasmtime::format_err!("no"))
}

fn main() {}
