//! The cost of moving data through an async host call: a string in, bytes out, through
//! `#[async_host]` against the same call written by hand on raw wasmtime
//! (`Linker::func_wrap_async`, `Memory::read`, the guest's `cabi_realloc` called with
//! `TypedFunc::call_async`, `Memory::write`), at 16 B, 1 KiB and 64 KiB.
//!
//! The guest calls the import `CALLS` times per export call, from a loop that resets its
//! bump allocator each time, so what is measured is the host call with its copies, the
//! UTF-8 check, and the nested call into the guest's allocator. Both variants run on one
//! engine with a `StackPool` (the allocator call takes a second stack from it).
//!
//! Run with `cargo bench -p async-wasm --bench data`.

#[allow(dead_code)]
mod common;

use std::hint::black_box;

use async_wasm::prelude::*;
use common::{block_on, pooled_engine};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmtime::{Caller, Engine, Extern, Linker, Module, Store};

/// Host calls per export call.
const CALLS: i32 = 100;

/// `run(n, len)`: n times, resets the bump allocator and calls `kv(0, len)` on the string
/// the test placed at 0; returns the sum of the lengths that came back.
const GUEST: &str = r#"(module
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

fn data(c: &mut Criterion) {
    let pool = StackPool::new(common::STACK_SIZE);
    let engine = pooled_engine(&pool);
    let module = Module::new(&engine, GUEST).unwrap();
    for len in [16usize, 1024, 64 * 1024] {
        let mut group = c.benchmark_group("data");
        group.throughput(Throughput::Elements(CALLS as u64));
        for (variant, linker) in [
            ("hand_written", hand_written_linker(&engine)),
            ("async_host", async_host_linker(&engine)),
        ] {
            let mut store = Store::new(&engine, ());
            let instance = block_on(linker.instantiate_async(&mut store, &module)).unwrap();
            let memory = instance.get_memory(&mut store, "memory").unwrap();
            memory.write(&mut store, 0, &vec![b'k'; len]).unwrap();
            let run = instance.get_func(&mut store, "run").unwrap();
            let run = run.get_async().get2::<i32, i32, i64>(&store).unwrap();
            let sum = block_on(run.call(&mut store, CALLS, len as i32)).unwrap();
            assert_eq!(
                sum,
                CALLS as i64 * len as i64,
                "{variant} returned every byte"
            );
            group.bench_function(BenchmarkId::new(variant, len), |b| {
                b.iter(|| black_box(block_on(run.call(&mut store, CALLS, len as i32)).unwrap()))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = data
}
criterion_main!(benches);
