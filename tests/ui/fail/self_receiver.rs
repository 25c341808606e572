use async_wasm::async_host;

struct Db;

impl Db {
    #[async_host]
    async fn lookup(&self, key: i32) -> i32 {
        key
    }
}

fn main() {}
