use async_wasm::async_host;

#[async_host(memory = "heap")]
async fn double(x: i32) -> i32 {
    x * 2
}

fn main() {}
