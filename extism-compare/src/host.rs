//! The user host functions of the contract (namespace `extism:host/user`), as a user of
//! Extism's Rust SDK writes them: synchronous, with `extism::host_fn!`. Their behaviour is
//! the one every host must reproduce (see `guests/extism/README.md`):
//! - `host_echo(String) -> String`: the text back;
//! - `lookup(Json {"key": k}) -> Json {"value": "value-of-<k>"}`;
//! - `kv_set(String, String)` / `kv_get(String) -> String`: a store shared by the plugin's
//!   calls; a key never set reads as the empty string;
//! - `add(i64, i64) -> i64`: the wrapping sum (each number an 8-byte little-endian block);
//! - `host_fail(String) -> String`: always fails, with "host_fail refused <text as Debug>".

use std::collections::BTreeMap;
use std::time::Duration;

use extism::convert::Json;
use extism::{Function, PTR, UserData};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct Query {
    pub key: String,
}

#[derive(Serialize)]
pub struct Answer {
    pub value: String,
}

/// The answer every host gives `lookup` for `key`.
pub fn lookup_value(key: &str) -> String {
    format!("value-of-{key}")
}

/// The message every host's `host_fail` fails with.
pub fn host_fail_message(text: &str) -> String {
    format!("host_fail refused {text:?}")
}

extism::host_fn!(host_echo(text: String) -> String { Ok(text) });

extism::host_fn!(lookup(delay: Option<Duration>; query: Json<Query>) -> Json<Answer> {
    let delay = *delay.get()?.lock().unwrap();
    if let Some(delay) = delay {
        // Extism's host functions are synchronous: waiting for I/O blocks the thread.
        std::thread::sleep(delay);
    }
    Ok(Json(Answer { value: lookup_value(&query.0.key) }))
});

extism::host_fn!(kv_set(store: BTreeMap<String, String>; key: String, value: String) {
    store.get()?.lock().unwrap().insert(key, value);
    Ok(())
});

extism::host_fn!(kv_get(store: BTreeMap<String, String>; key: String) -> String {
    Ok(store.get()?.lock().unwrap().get(&key).cloned().unwrap_or_default())
});

extism::host_fn!(add(a: i64, b: i64) -> i64 { Ok(a.wrapping_add(b)) });

extism::host_fn!(host_fail(text: String) -> String {
    let refusal: Result<String, _> = Err(extism::Error::msg(host_fail_message(&text)));
    refusal
});

/// The contract's host functions for one plugin: `lookup` sleeps `lookup_delay` first (the
/// benchmark's 10 ms of I/O), and the key-value store is this plugin's own.
pub fn functions(lookup_delay: Option<Duration>) -> Vec<Function> {
    let store = UserData::new(BTreeMap::<String, String>::new());
    vec![
        Function::new("host_echo", [PTR], [PTR], UserData::new(()), host_echo),
        Function::new("lookup", [PTR], [PTR], UserData::new(lookup_delay), lookup),
        Function::new("kv_set", [PTR, PTR], [], store.clone(), kv_set),
        Function::new("kv_get", [PTR], [PTR], store, kv_get),
        Function::new("add", [PTR, PTR], [PTR], UserData::new(()), add),
        Function::new("host_fail", [PTR], [PTR], UserData::new(()), host_fail),
    ]
}
