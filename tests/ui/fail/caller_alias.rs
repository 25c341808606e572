use async_wasm::async_host;
use wasmtime::Caller;

type Host<'a> = Caller<'a, ()>;

// Without `#[caller]`, the alias is taken for a wasm parameter; the error says to mark it.
#[async_host]
async fn lookup(host: Host<'_>, key: i32) -> i32 {
    let _ = host.data();
    key
}

fn main() {}
