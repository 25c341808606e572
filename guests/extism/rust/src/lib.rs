//! An Extism plugin written with Extism's own Rust PDK (`extism-pdk`), unmodified: the exports
//! a host must serve to run real plugins (see `guests/extism/README.md` for each one). Built
//! for wasm32-unknown-unknown, and for wasm32-wasip1 where `wasi_print` is added.

use extism_pdk::*;
use serde::{Deserialize, Serialize};

/// The host functions, in a module of their own: their Rust names match the exports that call
/// them. The import's symbol is rustc's own (it keeps the imports of each wasm module apart),
/// so an export of the same name does not satisfy it.
mod host {
    use extism_pdk::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize)]
    pub struct Query {
        pub key: String,
    }

    #[derive(Deserialize)]
    pub struct Answer {
        pub value: String,
    }

    #[host_fn]
    extern "ExtismHost" {
        pub fn host_echo(text: String) -> String;
        pub fn lookup(query: Json<Query>) -> Json<Answer>;
        pub fn kv_set(key: String, value: String);
        pub fn kv_get(key: String) -> String;
        pub fn add(a: i64, b: i64) -> i64;
        pub fn host_fail(text: String) -> String;
    }
}

/// The output is the input, byte for byte.
#[plugin_fn]
pub fn echo(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(input)
}

#[derive(Serialize)]
struct VowelReport {
    count: u64,
    total: u64,
    vowels: String,
}

/// Extism's classic sample: vowels from config, a running total in a var, JSON out.
#[plugin_fn]
pub fn count_vowels(input: String) -> FnResult<Json<VowelReport>> {
    let vowels = config::get("vowels")?.unwrap_or_else(|| "aeiouAEIOU".to_string());
    let count = input.chars().filter(|c| vowels.contains(*c)).count() as u64;
    // Stored as decimal text, so that the AssemblyScript plugin reads and writes it the same way.
    let total: u64 = match var::get::<String>("total")? {
        Some(text) => text.parse()?,
        None => 0,
    };
    let total = total + count;
    var::set("total", total.to_string())?;
    Ok(Json(VowelReport {
        count,
        total,
        vowels,
    }))
}

#[derive(Deserialize)]
struct Person {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    greeting: String,
}

#[plugin_fn]
pub fn greet(Json(person): Json<Person>) -> FnResult<Json<Greeting>> {
    Ok(Json(Greeting {
        greeting: format!("Hello, {}!", person.name),
    }))
}

/// The input names a config key; the output is its value.
#[plugin_fn]
pub fn config(key: String) -> FnResult<String> {
    match config::get(&key)? {
        Some(value) => Ok(value),
        None => Err(WithReturnCode::new(
            Error::msg(format!("no config key {key:?}")),
            1,
        )),
    }
}

/// Increments the var `n` (decimal text) and outputs its new value.
#[plugin_fn]
pub fn vars() -> FnResult<String> {
    let n: u64 = match var::get::<String>("n")? {
        Some(text) => text.parse()?,
        None => 0,
    };
    let n = (n + 1).to_string();
    var::set("n", &n)?;
    Ok(n)
}

#[plugin_fn]
pub fn log() -> FnResult<String> {
    trace!("a trace line");
    debug!("a debug line");
    info!("an info line");
    warn!("a warn line");
    error!("an error line");
    Ok("ok".to_string())
}

#[plugin_fn]
pub fn fail() -> FnResult<()> {
    Err(WithReturnCode::new(Error::msg("failed on purpose"), 3))
}

#[plugin_fn]
pub fn host_echo(text: String) -> FnResult<String> {
    Ok(unsafe { host::host_echo(text)? })
}

#[plugin_fn]
pub fn lookup(key: String) -> FnResult<String> {
    let Json(answer) = unsafe { host::lookup(Json(host::Query { key }))? };
    Ok(answer.value)
}

/// Input `key=value`: stores it through the host, then reads it back.
#[plugin_fn]
pub fn kv(input: String) -> FnResult<String> {
    let (key, value) = input
        .split_once('=')
        .ok_or_else(|| Error::msg("input is not key=value"))?;
    unsafe { host::kv_set(key.to_string(), value.to_string())? };
    Ok(unsafe { host::kv_get(key.to_string())? })
}

#[derive(Deserialize)]
struct Operands {
    a: i64,
    b: i64,
}

/// The PDK passes each number as an 8-byte little-endian block, and reads the result so.
#[plugin_fn]
pub fn add(Json(ops): Json<Operands>) -> FnResult<String> {
    Ok(unsafe { host::add(ops.a, ops.b)? }.to_string())
}

/// Reports what the PDK hands the plugin when a host function fails (if the host lets it go on).
#[plugin_fn]
pub fn host_fail(text: String) -> FnResult<String> {
    Ok(match unsafe { host::host_fail(text) } {
        Ok(value) => format!("ok: {value}"),
        Err(e) => format!("err: {e}"),
    })
}

#[derive(Serialize)]
struct Fetched {
    status: u16,
    body: String,
}

#[plugin_fn]
pub fn http_get(url: String) -> FnResult<Json<Fetched>> {
    let response = http::request::<()>(&HttpRequest::new(url), None)?;
    Ok(Json(Fetched {
        status: response.status_code(),
        body: String::from_utf8_lossy(&response.body()).into_owned(),
    }))
}

/// Returns success without ever calling `output_set`.
#[no_mangle]
pub extern "C" fn no_output() -> i32 {
    0
}

#[cfg(target_os = "wasi")]
#[plugin_fn]
pub fn wasi_print() -> FnResult<String> {
    println!("hello from wasi_print on stdout");
    eprintln!("hello from wasi_print on stderr");
    Ok("printed".to_string())
}

// Hostile exports: raw kernel calls no PDK helper would make, for the host's bad-input tests.
// Each outputs what the kernel answered, if the host lets the call go on.

/// `alloc(2^63)`.
#[no_mangle]
pub extern "C" fn alloc_huge() -> i32 {
    let handle = unsafe { extism::alloc(1 << 63) };
    output_text(&format!("alloc(2^63) = {handle}"));
    0
}

/// A handle never allocated, past any memory a plugin this small ever has.
pub const BAD_HANDLE: u64 = 0x7fff_0000;

/// `load_u64` from [`BAD_HANDLE`].
#[no_mangle]
pub extern "C" fn load_bad() -> i32 {
    let value = unsafe { extism::load_u64(BAD_HANDLE) };
    output_text(&format!("load_u64({BAD_HANDLE:#x}) = {value}"));
    0
}

/// `output_set` of a range that starts inside a 16-byte block and runs 48 bytes past its end.
#[no_mangle]
pub extern "C" fn output_bad() -> i32 {
    let block = unsafe { extism::alloc(16) };
    unsafe { extism::output_set(block + 8, 64) };
    0
}

/// Sets a var one byte larger than Extism's default `max_var_bytes` (1 MiB).
#[no_mangle]
pub extern "C" fn var_huge() -> i32 {
    let value = vec![b'x'; (1 << 20) + 1];
    match var::set("huge", value) {
        Ok(()) => output_text("var set"),
        Err(e) => output_text(&format!("var not set: {e}")),
    }
    0
}

fn output_text(text: &str) {
    if let Ok(memory) = Memory::from_bytes(text) {
        memory.set_output();
    }
}
