use async_wasm::async_host;
use wasmtime::Caller;

#[async_host]
async fn sum(_caller: Caller<'_, ()>, numbers: Vec<i32>) -> i32 {
    numbers.iter().sum()
}

fn main() {}
