use async_wasm::async_host;
use wasmtime::Caller;

#[async_host]
async fn lookup<'a, T>(caller: Caller<'a, T>, key: i32) -> i32
where
    T: Send + 'a,
{
    let _ = caller.data();
    key
}

fn main() {}
