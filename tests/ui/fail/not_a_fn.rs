use async_wasm::async_host;

#[async_host]
struct Lookup;

fn main() {}
