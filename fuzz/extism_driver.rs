//! Extism's kernel and host services driven by arbitrary bytes, through a real plugin, with
//! the invariants a hostile plugin must not break: shared by the fuzz target
//! (`fuzz_targets/extism_kernel.rs`) and its proptest version
//! (`tests/tests/integration/extism_fuzz.rs`).
//!
//! The plugin is an interpreter: it copies its input into its own memory and runs it as
//! 17-byte records (an operation, then two `u64` operands), each one call of an
//! `extism:host/env` import (alloc, free, loads and stores, input, output, error, config,
//! vars, logs, reset) or of a user host function, with operands that are the bytes' own
//! (any handle, address or length) or, when the operation's flags say so, near the last
//! handle it got. The bytes also choose the shape (a fresh instance per call, or a
//! long-lived plugin called twice: vars kept, and a broken instance replaced) and the
//! plugin's memory limit, from two pages (one for its own memory) to 64 MiB.
//!
//! Checked: the host never panics; every failed call is an `ExtismError` whose first line
//! is its own message; an output is within the plugin's memory limit; and the plugin
//! serves a good call afterwards, on a fresh instance and on the long-lived one.

use async_wasm::AsyncEngine;
use async_wasm::extism::{CompiledPlugin, ExtismError, Manifest, PluginBuilder};

/// The plugins' memory limits (`max_pages`): Extism memory and their own together.
const MAX_PAGES: [u32; 4] = [2, 8, 64, 1024];

const PLUGIN: &str = r#"(module
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "free" (func $free (param i64)))
    (import "extism:host/env" "length" (func $length (param i64) (result i64)))
    (import "extism:host/env" "length_unsafe" (func $length_unsafe (param i64) (result i64)))
    (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
    (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
    (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
    (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
    (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
    (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
    (import "extism:host/env" "input_length" (func $input_length (result i64)))
    (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
    (import "extism:host/env" "input_set" (func $input_set (param i64 i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (import "extism:host/env" "output_length" (func $output_length (result i64)))
    (import "extism:host/env" "output_offset" (func $output_offset (result i64)))
    (import "extism:host/env" "error_set" (func $error_set (param i64)))
    (import "extism:host/env" "error_get" (func $error_get (result i64)))
    (import "extism:host/env" "reset" (func $reset))
    (import "extism:host/env" "memory_bytes" (func $memory_bytes (result i64)))
    (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
    (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
    (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
    (import "extism:host/env" "log_info" (func $log_info (param i64)))
    (import "extism:host/env" "get_log_level" (func $get_log_level (result i32)))
    (import "extism:host/user" "host_echo" (func $host_echo (param i64) (result i64)))
    (memory (export "memory") 1)

    ;; The input, copied to address 0 (at most 60,000 bytes), so that `input_set` cannot
    ;; change the program while it runs.
    (func $copy_input (result i32) (local $len i64) (local $at i64)
        (local.set $len (call $input_length))
        (if (i64.gt_u (local.get $len) (i64.const 60000)) (then (local.set $len (i64.const 60000))))
        (block $done (loop $more
            (br_if $done (i64.gt_u (i64.add (local.get $at) (i64.const 8)) (local.get $len)))
            (i64.store (i32.wrap_i64 (local.get $at)) (call $input_load_u64 (local.get $at)))
            (local.set $at (i64.add (local.get $at) (i64.const 8)))
            (br $more)))
        (block $done (loop $more
            (br_if $done (i64.ge_u (local.get $at) (local.get $len)))
            (i32.store8 (i32.wrap_i64 (local.get $at)) (call $input_load_u8 (local.get $at)))
            (local.set $at (i64.add (local.get $at) (i64.const 1)))
            (br $more)))
        (i32.wrap_i64 (local.get $len)))

    (func (export "run") (result i32)
        (local $end i32) (local $at i32) (local $op i32) (local $a i64) (local $b i64)
        (local $last i64)
        (local.set $end (call $copy_input))
        (block $finished (loop $next
            (br_if $finished (i32.gt_u (i32.add (local.get $at) (i32.const 17)) (local.get $end)))
            (local.set $op (i32.load8_u (local.get $at)))
            (local.set $a (i64.load offset=1 (local.get $at)))
            (local.set $b (i64.load offset=9 (local.get $at)))
            (local.set $at (i32.add (local.get $at) (i32.const 17)))
            ;; Flag 0x80: the first operand is near the last handle; 0x40: the second is small.
            (if (i32.and (local.get $op) (i32.const 0x80))
                (then (local.set $a (i64.add (local.get $last) (i64.and (local.get $a) (i64.const 63))))))
            (if (i32.and (local.get $op) (i32.const 0x40))
                (then (local.set $b (i64.and (local.get $b) (i64.const 255)))))
            (block $done
            (block $o23 (block $o22 (block $o21 (block $o20 (block $o19 (block $o18
            (block $o17 (block $o16 (block $o15 (block $o14 (block $o13 (block $o12
            (block $o11 (block $o10 (block $o9 (block $o8 (block $o7 (block $o6
            (block $o5 (block $o4 (block $o3 (block $o2 (block $o1 (block $o0
                (br_table $o0 $o1 $o2 $o3 $o4 $o5 $o6 $o7 $o8 $o9 $o10 $o11 $o12 $o13 $o14
                          $o15 $o16 $o17 $o18 $o19 $o20 $o21 $o22 $o23 $o0
                    (i32.rem_u (i32.and (local.get $op) (i32.const 0x3f)) (i32.const 24))))
                (local.set $last (call $alloc (local.get $b))) (br $done))
                (call $free (local.get $a)) (br $done))
                (drop (call $length (local.get $a))) (br $done))
                (drop (call $length_unsafe (local.get $a))) (br $done))
                (drop (call $load_u8 (local.get $a))) (br $done))
                (drop (call $load_u64 (local.get $a))) (br $done))
                (call $store_u8 (local.get $a) (i32.wrap_i64 (local.get $b))) (br $done))
                (call $store_u64 (local.get $a) (local.get $b)) (br $done))
                (drop (call $input_load_u8 (local.get $b))) (br $done))
                (drop (call $input_load_u64 (local.get $b))) (br $done))
                (drop (i64.add (call $input_length) (call $input_offset))) (br $done))
                (call $input_set (local.get $a) (local.get $b)) (br $done))
                (call $output_set (local.get $a) (local.get $b)) (br $done))
                (call $error_set (local.get $a)) (br $done))
                (local.set $last (call $error_get)) (br $done))
                (call $reset) (br $done))
                (drop (i64.add (call $memory_bytes)
                    (i64.add (call $output_length) (call $output_offset)))) (br $done))
                (local.set $last (call $config_get (local.get $a))) (br $done))
                (local.set $last (call $var_get (local.get $a))) (br $done))
                (call $var_set (local.get $a) (local.get $last)) (br $done))
                (call $log_info (local.get $a)) (br $done))
                (local.set $last (call $host_echo (local.get $a))) (br $done))
                (drop (call $get_log_level)) (br $done))
                ;; Return early, with the second operand as the code.
                (return (i32.wrap_i64 (local.get $b))))
            (br $next)))
        (i32.const 0))

    (func (export "echo") (result i32)
        (call $output_set (call $input_offset) (call $input_length))
        (i32.const 0)))"#;

/// The interpreter plugin compiled once per memory limit, on an engine of its own.
pub struct Driver {
    plugins: Vec<CompiledPlugin>,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    pub fn new() -> Driver {
        let engine = AsyncEngine::builder().max_stores(4).build().unwrap();
        let plugins = MAX_PAGES
            .iter()
            .map(|&pages| {
                let manifest = Manifest::new([PLUGIN.as_bytes()])
                    .with_memory_max(pages)
                    .with_max_var_bytes(1024)
                    .with_config_key("k", "v");
                PluginBuilder::new(manifest)
                    .host_fn("host_echo", |bytes: Vec<u8>| async move {
                        // Pending once, so that the call suspends mid-program.
                        YieldOnce(false).await;
                        bytes
                    })
                    .build(&engine)
                    .unwrap()
            })
            .collect();
        Driver { plugins }
    }

    /// Runs `input` as the interpreter's program: its first byte chooses the shape and
    /// the memory limit, the rest is the program.
    pub fn run(&self, input: &[u8]) {
        let (shape, program) = input.split_first().unwrap_or((&0, &[]));
        let limit = usize::from(shape >> 1) % MAX_PAGES.len();
        let (compiled, max_pages) = (&self.plugins[limit], MAX_PAGES[limit]);
        futures::executor::block_on(async {
            if shape & 1 == 0 {
                check(compiled.call::<_, Vec<u8>>("run", program).await, max_pages);
                let after: String = compiled.call("echo", "after").await.unwrap();
                assert_eq!(after, "after");
            } else {
                let mut plugin = compiled.instantiate().await.unwrap();
                check(plugin.call::<_, Vec<u8>>("run", program).await, max_pages);
                check(plugin.call::<_, Vec<u8>>("run", program).await, max_pages);
                let after: String = plugin.call("echo", "after").await.unwrap();
                assert_eq!(after, "after");
            }
        });
    }
}

fn check(result: wasmtime::Result<Vec<u8>>, max_pages: u32) {
    match result {
        Ok(output) => assert!(output.len() as u64 <= u64::from(max_pages) * 65536),
        Err(err) => {
            let typed = err
                .downcast_ref::<ExtismError>()
                .unwrap_or_else(|| panic!("not an ExtismError: {err:?}"));
            assert_eq!(err.to_string(), typed.to_string(), "{err:?}");
        }
    }
}

/// Pending on its first poll (waking itself), ready on the second.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
