use async_wasm::async_host;

#[async_host]
async extern "C" fn lookup(key: i32) -> i32 {
    key
}

fn main() {}
