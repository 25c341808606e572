use async_wasm::prelude::*;
use wasmtime::{Caller, Engine, Func, Store};

#[async_host]
async fn lookup(_caller: Caller<'_, ()>, key: i32) -> i32 {
    key
}

fn main() {
    let mut store = Store::new(&Engine::default(), ());
    let _ = Func::wrap_async2(&mut store, lookup);
}
