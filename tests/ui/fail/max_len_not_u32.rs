use async_wasm::async_host;

#[async_host(max_len = -1)]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

fn main() {}
