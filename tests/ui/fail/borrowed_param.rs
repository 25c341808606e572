use async_wasm::async_host;

#[async_host]
async fn greet(name: &str) -> i32 {
    name.len() as i32
}

fn main() {}
