use async_wasm::async_host;

// A cap on data, on a fn that moves none (no data, no `Result` for an error value).
#[async_host(max_len = 1024)]
async fn double(x: i32) -> i32 {
    x * 2
}

fn main() {}
