use async_wasm::async_host;
use wasmtime::Caller;

#[async_host]
async fn wait(_caller: Caller<'_, ()>, for_how_long: std::time::Duration) -> i32 {
    for_how_long.as_millis() as i32
}

fn main() {}
