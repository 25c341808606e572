use async_wasm::async_host;

#[async_host(send)]
async fn lookup(key: i32) -> i32 {
    key
}

fn main() {}
