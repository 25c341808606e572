//! The Extism host's fixed costs, and why its kernel is native host functions:
//!
//! - `plugin_echo_16b`: a long-lived `Plugin`, 16 bytes in and out (Extism's own host
//!   takes about 10 µs for this).
//! - `plugin_host_fn`: the same, through one ready-at-once host function (String in and
//!   out).
//! - `per_request_echo`: a `CompiledPlugin` call: new store, instance, one call.
//! - `copy_1k_native` / `copy_1k_wasm_kernel`: a plugin copying 1 KiB out of Extism memory
//!   8 bytes per call (what every PDK does), through this crate's native `load_u64`, and
//!   through the same function as a bounds-checked wasm kernel in a second instance (the
//!   shape of Extism's own kernel), and `copy_1k_host_call_floor`: through a host import
//!   that only returns, the least a native kernel can cost.
//!
//! Run with `cargo bench -p async-wasm --features extism --bench extism_kernel`.
//!
//! Measured 2026-12-03 on this project's 2-core VM under load (load average 7-10, other
//! builds running), criterion medians: `plugin_echo_16b` 0.58 µs, `plugin_host_fn`
//! 0.97 µs, `per_request_echo` 2.28 µs, `copy_1k_native` 1.77 µs, `copy_1k_wasm_kernel`
//! 0.49 µs, `copy_1k_host_call_floor` 0.74 µs. Less the call itself, 128 loads cost
//! about 10 ns each natively (of which about 4.6 ns is wasmtime's host call, the floor),
//! and about 2.6 ns through a wasm kernel that checks only its memory's bounds.

#[allow(dead_code)]
mod common;

use async_wasm::AsyncEngine;
use async_wasm::extism::{CompiledPlugin, Manifest};
use common::block_on;
use criterion::{Criterion, criterion_group, criterion_main};
use wasmtime::{Instance, Linker, Module, Store};

const ECHO: &str = r#"(module
    (import "extism:host/user" "host_echo" (func $host_echo (param i64) (result i64)))
    (import "extism:host/env" "input_offset" (func $input (result i64)))
    (import "extism:host/env" "input_length" (func $input_length (result i64)))
    (import "extism:host/env" "length" (func $length (param i64) (result i64)))
    (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (func (export "echo") (result i32)
        (call $output_set (call $input) (call $input_length))
        (i32.const 0))
    (func (export "host_echo") (result i32) (local $h i64)
        (local.set $h (call $host_echo (call $input)))
        (call $output_set (local.get $h) (call $length (local.get $h)))
        (i32.const 0))
    ;; loads the input's first 1 KiB, 8 bytes per call
    (func (export "copy_1k") (result i32) (local $i i64) (local $sum i64) (local $at i64)
        (local.set $at (call $input))
        (loop $next
            (local.set $sum (i64.add (local.get $sum)
                (call $load_u64 (i64.add (local.get $at) (local.get $i)))))
            (local.set $i (i64.add (local.get $i) (i64.const 8)))
            (br_if $next (i64.lt_u (local.get $i) (i64.const 1024))))
        (i32.wrap_i64 (i64.and (local.get $sum) (i64.const 0))))
)"#;

/// A kernel in wasm: `load_u64` with the bounds check Extism's kernel makes.
const WASM_KERNEL: &str = r#"(module
    (memory (export "memory") 1)
    (func (export "load_u64") (param i64) (result i64)
        (if (i64.gt_u (i64.add (local.get 0) (i64.const 8)) (i64.const 65536))
            (then (return (i64.const 0))))
        (i64.load (i32.wrap_i64 (local.get 0)))))"#;

const WASM_KERNEL_PLUGIN: &str = r#"(module
    (import "kernel" "load_u64" (func $load_u64 (param i64) (result i64)))
    (func (export "copy_1k") (result i32) (local $i i64) (local $sum i64)
        (loop $next
            (local.set $sum (i64.add (local.get $sum) (call $load_u64 (i64.add (i64.const 64) (local.get $i)))))
            (local.set $i (i64.add (local.get $i) (i64.const 8)))
            (br_if $next (i64.lt_u (local.get $i) (i64.const 1024))))
        (i32.wrap_i64 (i64.and (local.get $sum) (i64.const 0)))))"#;

fn extism(c: &mut Criterion) {
    let engine = AsyncEngine::builder().max_stores(100).build().unwrap();
    let compiled = CompiledPlugin::builder(Manifest::new([ECHO.as_bytes()]))
        .host_fn("host_echo", |text: String| async move { text })
        .build(&engine)
        .unwrap();
    let mut plugin = block_on(compiled.instantiate()).unwrap();
    let input = "0123456789abcdef";
    let kib = "x".repeat(1024);

    let mut group = c.benchmark_group("extism");
    group.bench_function("plugin_echo_16b", |b| {
        b.iter(|| block_on(plugin.call::<_, String>("echo", input)).unwrap())
    });
    group.bench_function("plugin_host_fn", |b| {
        b.iter(|| block_on(plugin.call::<_, String>("host_echo", input)).unwrap())
    });
    group.bench_function("per_request_echo", |b| {
        b.iter(|| block_on(compiled.call::<_, String>("echo", input)).unwrap())
    });
    group.bench_function("copy_1k_native", |b| {
        b.iter(|| block_on(plugin.call::<_, String>("copy_1k", kib.as_str())).unwrap())
    });

    // The same loads through a wasm kernel instance, called the same way (call_async).
    let module = Module::new(engine.engine(), WASM_KERNEL).unwrap();
    let plugin_module = Module::new(engine.engine(), WASM_KERNEL_PLUGIN).unwrap();
    let mut store = Store::new(engine.engine(), ());
    let kernel = block_on(Instance::new_async(&mut store, &module, &[])).unwrap();
    let mut linker = Linker::new(engine.engine());
    linker.instance(&mut store, "kernel", kernel).unwrap();
    let instance = block_on(linker.instantiate_async(&mut store, &plugin_module)).unwrap();
    let copy = instance
        .get_typed_func::<(), i32>(&mut store, "copy_1k")
        .unwrap();
    group.bench_function("copy_1k_wasm_kernel", |b| {
        b.iter(|| block_on(copy.call_async(&mut store, ())).unwrap())
    });

    // The floor: the same loop through a host import that does nothing but return.
    let mut linker = Linker::new(engine.engine());
    linker
        .func_wrap(
            "kernel",
            "load_u64",
            |_: wasmtime::Caller<'_, ()>, addr: u64| wasmtime::Result::<u64>::Ok(addr),
        )
        .unwrap();
    let mut store = Store::new(engine.engine(), ());
    let instance = block_on(linker.instantiate_async(&mut store, &plugin_module)).unwrap();
    let floor = instance
        .get_typed_func::<(), i32>(&mut store, "copy_1k")
        .unwrap();
    group.bench_function("copy_1k_host_call_floor", |b| {
        b.iter(|| block_on(floor.call_async(&mut store, ())).unwrap())
    });
    group.finish();
}

criterion_group!(benches, extism);
criterion_main!(benches);
