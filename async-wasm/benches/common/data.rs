//! What the data benchmarks share: a guest that calls a string-in, bytes-out import in a
//! loop, the import written with `#[async_host]` and by hand on raw wasmtime, and the
//! variants, each a store and instance kept for every iteration.

use std::sync::{Arc, Mutex};

use async_wasm::prelude::*;
use wasmtime::{Caller, Engine, Extern, Linker, Module, Store};

use super::{BlockingRequest, block_on};

/// Host calls per export call.
pub const CALLS: i32 = 100;

/// `run(n, len)`: n times, resets the bump allocator and calls `kv(0, len)` on the string
/// the test placed at 0; returns the sum of the lengths that came back.
pub const GUEST: &str = r#"(module
    (import "env" "kv" (func $kv (param i32 i32) (result i64)))
    (memory (export "memory") 4)
    (global $next (mut i32) (i32.const 131072))
    (func (export "cabi_realloc") (param i32 i32 i32) (param $len i32) (result i32)
        (local $ptr i32)
        (local.set $ptr (global.get $next))
        (global.set $next (i32.add (local.get $ptr) (local.get $len)))
        (local.get $ptr))
    (func (export "run") (param $n i32) (param $len i32) (result i64)
        (local $sum i64)
        (block $done
            (loop $next
                (br_if $done (i32.eqz (local.get $n)))
                (global.set $next (i32.const 131072))
                (local.set $sum (i64.add (local.get $sum)
                    (i64.shr_u (call $kv (i32.const 0) (local.get $len)) (i64.const 32))))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $next)))
        (local.get $sum)))"#;

#[async_host]
async fn kv(_caller: Caller<'_, ()>, key: String) -> Vec<u8> {
    key.into_bytes()
}

fn async_host_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker.func_wrap_host("env", "kv", kv).unwrap();
    linker
}

/// The same import written on raw wasmtime, as a careful hand would: bounds-checked reads
/// and writes, a UTF-8 check, the guest's allocator for the result.
fn hand_written_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async(
            "env",
            "kv",
            |mut caller: Caller<'_, ()>, (ptr, len): (i32, i32)| {
                Box::new(async move {
                    let memory = caller
                        .get_export("memory")
                        .and_then(Extern::into_memory)
                        .ok_or_else(|| wasmtime::format_err!("no memory"))?;
                    let mut key = vec![0; len as u32 as usize];
                    memory.read(&caller, ptr as u32 as usize, &mut key)?;
                    let key = String::from_utf8(key)?;
                    let value = key.into_bytes();
                    let realloc = caller
                        .get_export("cabi_realloc")
                        .and_then(Extern::into_func)
                        .ok_or_else(|| wasmtime::format_err!("no cabi_realloc"))?
                        .typed::<(i32, i32, i32, i32), i32>(&caller)?;
                    let out = realloc
                        .call_async(&mut caller, (0, 0, 1, value.len() as i32))
                        .await?;
                    memory.write(&mut caller, out as u32 as usize, &value)?;
                    Ok(((value.len() as u64) << 32 | u64::from(out as u32)) as i64)
                })
            },
        )
        .unwrap();
    linker
}

/// The payload sizes measured, in bytes.
pub const LENGTHS: [usize; 3] = [16, 1024, 64 * 1024];

/// `run(CALLS, len)` for each variant (`hand_written` first, the baseline, then
/// `async_host`), each on a store of its own with a `len`-byte key in place; each checked
/// once. Its result is the number of bytes that came back, as an `i32`.
pub fn variants(engine: &Engine, len: usize) -> Vec<(&'static str, BlockingRequest)> {
    let module = Module::new(engine, GUEST).unwrap();
    [
        ("hand_written", hand_written_linker(engine)),
        ("async_host", async_host_linker(engine)),
    ]
    .into_iter()
    .map(|(name, linker)| {
        let mut store = Store::new(engine, ());
        let instance = block_on(linker.instantiate_async(&mut store, &module)).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        memory.write(&mut store, 0, &vec![b'k'; len]).unwrap();
        let run = instance.get_func(&mut store, "run").unwrap();
        let run = run.get_async().get2::<i32, i32, i64>(&store).unwrap();
        let store = Mutex::new(store);
        let request: BlockingRequest = Arc::new(move || {
            let sum = block_on(run.call(&mut *store.lock().unwrap(), CALLS, len as i32));
            sum.unwrap() as i32
        });
        assert_eq!(
            request() as i64,
            CALLS as i64 * len as i64,
            "{name} returned every byte"
        );
        (name, request)
    })
    .collect()
}
