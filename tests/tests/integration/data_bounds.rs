//! What a hostile guest cannot get past on the data path: a cap on the bytes of one call
//! (per function, engine-wide, by default), checked before anything is copied; no data host
//! function from inside the guest's allocator, on either allocation; the ABI version a
//! guest marks; memories the ABI cannot read; and the host's peak RSS under the attack.

use async_wasm::data::{AbiMismatch, DataError, DataErrorKind, GuestAbi, check_module};
use async_wasm::prelude::*;
use async_wasm::{Allocation, AsyncEngine};
use wasmtime::{Caller, Config, Engine, Func, Instance, Linker, Module, Store};

/// The first `DataError` in `err`'s chain, contexts included.
fn data_error(err: &wasmtime::Error) -> &DataError {
    err.downcast_ref::<DataError>()
        .unwrap_or_else(|| panic!("no DataError in {err:?}"))
}

#[async_host]
async fn seven(
    a: String,
    b: String,
    c: Vec<u8>,
    d: Vec<u8>,
    e: String,
    f: String,
    g: Vec<u8>,
) -> i32 {
    [
        a.len(),
        b.len(),
        c.len(),
        d.len(),
        e.len(),
        f.len(),
        g.len(),
    ]
    .iter()
    .sum::<usize>() as i32
}

/// A guest that grows its memory to 4 GiB (reserved, never touched) and passes
/// `(0, 0xFFFF0000)` for each of seven data parameters; `fine` passes 7 small ones.
const HOSTILE: &str = r#"(module
    (import "env" "seven" (func $seven (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 16))
    (func (export "grow") (result i32) (memory.grow (i32.const 65535)))
    (func (export "attack") (result i32)
        (call $seven
            (i32.const 0) (i32.const 0xFFFF0000) (i32.const 0) (i32.const 0xFFFF0000)
            (i32.const 0) (i32.const 0xFFFF0000) (i32.const 0) (i32.const 0xFFFF0000)
            (i32.const 0) (i32.const 0xFFFF0000) (i32.const 0) (i32.const 0xFFFF0000)
            (i32.const 0) (i32.const 0xFFFF0000)))
    (func (export "fine") (result i32)
        (call $seven
            (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 0) (i32.const 3)
            (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 6)
            (i32.const 0) (i32.const 7))))"#;

async fn call0<T: Send>(
    store: &mut Store<T>,
    instance: Instance,
    name: &str,
) -> wasmtime::Result<i32> {
    let f = instance.get_func(&mut *store, name).unwrap();
    f.get_async().get0::<i32>(&*store)?.call(&mut *store).await
}

/// The attack on a fresh store of `engine`: returns the call's error, after checking that
/// the guest did grow to 4 GiB and that the next call, on a fresh store, succeeds.
async fn attack(engine: &AsyncEngine) -> wasmtime::Error {
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap_host("env", "seven", seven).unwrap();
    let module = Module::new(engine.engine(), HOSTILE).unwrap();
    let mut store = engine.store(());
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
    assert_eq!(
        call0(&mut store, instance, "grow").await.unwrap(),
        1,
        "grown to 4 GiB"
    );
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(memory.data_size(&store), 1 << 32);
    let err = call0(&mut store, instance, "attack").await.unwrap_err();
    let mut fresh = engine.store(());
    let instance = linker.instantiate_async(&mut fresh, &module).await.unwrap();
    assert_eq!(call0(&mut fresh, instance, "fine").await.unwrap(), 28);
    err
}

/// Fails before the cap: the host copied every 4 GiB parameter (and the process ran out of
/// memory or took minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gib_parameters_fail_at_once_with_too_large() {
    let engine = AsyncEngine::builder()
        .allocation(Allocation::StackPool)
        .build()
        .unwrap();
    let err = attack(&engine).await;
    let data = data_error(&err);
    assert_eq!(data.param_name(), Some("a"), "{err:#}");
    assert_eq!(
        data.kind(),
        &DataErrorKind::TooLarge {
            len: 0xFFFF_0000,
            max_len: GuestAbi::DEFAULT_MAX_LEN
        }
    );
}

/// VmHWM of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The peak RSS the attack may reach in a process of its own: the test binary with
/// wasmtime and cranelift loaded, one module compiled, a 4 GiB memory reserved and the call
/// refused, three times. Measured at 35 MiB; with the copies, 28 GiB were wanted.
const PEAK_RSS_MIB: u64 = 64;

/// The attack again, in a child process (this test re-run with `ASYNC_WASM_RSS_CHILD`), so
/// that VmHWM is the attack's alone and not the other tests'.
#[test]
#[cfg(target_os = "linux")]
fn the_attack_keeps_peak_rss_bounded() {
    if std::env::var_os("ASYNC_WASM_RSS_CHILD").is_some() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let engine = AsyncEngine::builder()
            .allocation(Allocation::StackPool)
            .build()
            .unwrap();
        for _ in 0..3 {
            let err = runtime.block_on(attack(&engine));
            assert!(matches!(
                data_error(&err).kind(),
                DataErrorKind::TooLarge { .. }
            ));
        }
        println!("ASYNC_WASM_PEAK_RSS_KIB={}", peak_rss_kib());
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "data_bounds::the_attack_keeps_peak_rss_bounded",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ASYNC_WASM_RSS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kib: u64 = stdout
        .lines()
        .find_map(|l| Some(l.split_once("ASYNC_WASM_PEAK_RSS_KIB=")?.1))
        .unwrap_or_else(|| panic!("no figure in {stdout}"))
        .parse()
        .unwrap();
    eprintln!("peak RSS of the attack: {} MiB", kib / 1024);
    assert!(kib < PEAK_RSS_MIB * 1024, "peak RSS {kib} KiB");
}

#[async_host(max_len = 10)]
async fn two(a: String, b: String) -> i32 {
    (a.len() + b.len()) as i32
}

#[async_host(max_len = 1024)]
async fn bytes(n: i32) -> Vec<u8> {
    vec![7; n as usize]
}

#[async_host]
async fn plain(text: String) -> i32 {
    text.len() as i32
}

/// An allocator that counts its calls; `two(len_a, len_b)`, `bytes(n)`, `plain(len)` read
/// their bytes from address 0.
const CAPS: &str = r#"(module
    (import "env" "two" (func $two (param i32 i32 i32 i32) (result i32)))
    (import "env" "bytes" (func $bytes (param i32) (result i64)))
    (import "env" "plain" (func $plain (param i32 i32) (result i32)))
    (import "env" "abi" (func $abi (param i32 i32) (result i32)))
    (memory (export "memory") 2)
    (global $allocs (mut i32) (i32.const 0))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        (global.set $allocs (i32.add (global.get $allocs) (i32.const 1)))
        (i32.const 1024))
    (func (export "allocs") (result i32) (global.get $allocs))
    (func (export "two") (param i32 i32) (result i32)
        (call $two (i32.const 0) (local.get 0) (i32.const 0) (local.get 1)))
    (func (export "bytes") (param i32) (result i64) (call $bytes (local.get 0)))
    (func (export "plain") (param i32) (result i32) (call $plain (i32.const 0) (local.get 0)))
    (func (export "abi") (param i32) (result i32) (call $abi (i32.const 0) (local.get 0))))"#;

const ABI: GuestAbi = GuestAbi::new("abi").with_max_len(100);

fn caps_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_host("env", "two", two)
        .unwrap()
        .func_wrap_host("env", "bytes", bytes)
        .unwrap()
        .func_wrap_host("env", "plain", plain)
        .unwrap()
        .func_wrap_async2(
            "env",
            "abi",
            |mut caller: Caller<'_, ()>, ptr: i32, len: i32| {
                let text = ABI.read::<Vec<u8>, _>(&mut caller, "text", ptr, len);
                Box::new(async move { Ok(text?.len() as i32) })
            },
        )
        .unwrap();
    linker
}

async fn call1<P: wasmtime::WasmTy + Sync + 'static, R: wasmtime::WasmResults + Sync + 'static>(
    store: &mut Store<()>,
    instance: Instance,
    name: &str,
    arg: P,
) -> wasmtime::Result<R> {
    let f = instance.get_func(&mut *store, name).unwrap();
    f.get_async()
        .get1::<P, R>(&*store)?
        .call(&mut *store, arg)
        .await
}

/// `#[async_host(max_len)]` caps the parameters of a call together and its result, and
/// `GuestAbi::with_max_len` a hand-written function's; a result over the cap never reaches
/// the guest's allocator.
#[tokio::test(flavor = "current_thread")]
async fn per_function_caps_hold_for_parameters_together_and_results() {
    let engine = AsyncEngine::builder().build().unwrap();
    let linker = caps_linker(engine.engine());
    let module = Module::new(engine.engine(), CAPS).unwrap();
    let mut store = engine.store(());
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
    let f = instance.get_func(&mut store, "two").unwrap();
    let two = f.get_async().get2::<i32, i32, i32>(&store).unwrap();
    assert_eq!(two.call(&mut store, 5, 5).await.unwrap(), 10);
    let err = two.call(&mut store, 6, 5).await.unwrap_err();
    let data = data_error(&err);
    assert_eq!(data.param_name(), Some("b"));
    assert_eq!(
        data.kind(),
        &DataErrorKind::TooLarge {
            len: 11,
            max_len: 10
        }
    );

    let ok: i64 = call1(&mut store, instance, "bytes", 1024).await.unwrap();
    assert_eq!(ok >> 32, 1024);
    let err = call1::<i32, i64>(&mut store, instance, "bytes", 1025)
        .await
        .unwrap_err();
    let data = data_error(&err);
    assert_eq!(data.param_name(), None);
    assert_eq!(
        data.kind(),
        &DataErrorKind::TooLarge {
            len: 1025,
            max_len: 1024
        }
    );
    assert_eq!(call0(&mut store, instance, "allocs").await.unwrap(), 1);

    assert_eq!(
        call1::<i32, i32>(&mut store, instance, "abi", 100)
            .await
            .unwrap(),
        100
    );
    let err = call1::<i32, i32>(&mut store, instance, "abi", 101)
        .await
        .unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::TooLarge {
            len: 101,
            max_len: 100
        }
    );
}

/// `AsyncEngineBuilder::max_data_len` caps every function defined on its engine without a
/// cap of its own, through `LinkerExt`, `FuncExt` and wasmtime's own linker alike; a
/// function's own cap wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_wide_cap_applies_where_functions_have_none() {
    let engine = AsyncEngine::builder().max_data_len(50).build().unwrap();
    let mut linker = caps_linker(engine.engine());
    // wasmtime's own linker, with `GuestAbi` inside: the cap is found from the caller.
    linker.allow_shadowing(true);
    linker
        .func_wrap_async(
            "env",
            "abi",
            |mut caller: Caller<'_, ()>, (ptr, len): (i32, i32)| {
                let text = GuestAbi::new("abi").read::<Vec<u8>, _>(&mut caller, "text", ptr, len);
                Box::new(async move { Ok(text?.len() as i32) })
            },
        )
        .unwrap();
    let module = Module::new(engine.engine(), CAPS).unwrap();
    let mut store = engine.store(());
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
    assert_eq!(
        call1::<i32, i32>(&mut store, instance, "plain", 50)
            .await
            .unwrap(),
        50
    );
    let err = call1::<i32, i32>(&mut store, instance, "plain", 51)
        .await
        .unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::TooLarge {
            len: 51,
            max_len: 50
        }
    );
    let err = call1::<i32, i32>(&mut store, instance, "abi", 51)
        .await
        .unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::TooLarge {
            len: 51,
            max_len: 50
        }
    );
    // `bytes` has its own cap, above the engine's.
    let ok: i64 = call1(&mut store, instance, "bytes", 1000).await.unwrap();
    assert_eq!(ok >> 32, 1000);

    // A `Func` made on a store of the engine.
    let func = Func::wrap_host(&mut store, plain);
    let mut linker = caps_linker(engine.engine());
    linker.allow_shadowing(true);
    linker.define(&store, "env", "plain", func).unwrap();
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
    let err = call1::<i32, i32>(&mut store, instance, "plain", 51)
        .await
        .unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::TooLarge {
            len: 51,
            max_len: 50
        }
    );
}

/// An engine made after a capped one was dropped (at the same address, as often as not)
/// does not inherit its cap.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_engines_cap_does_not_reach_a_later_engine() {
    for _ in 0..10 {
        drop(AsyncEngine::builder().max_data_len(1).build().unwrap());
        let engine = AsyncEngine::builder().build().unwrap();
        let linker = caps_linker(engine.engine());
        let module = Module::new(engine.engine(), CAPS).unwrap();
        let mut store = engine.store(());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        assert_eq!(
            call1::<i32, i32>(&mut store, instance, "plain", 100)
                .await
                .unwrap(),
            100
        );
    }
}

#[async_host]
async fn echo(text: String) -> String {
    text
}

/// A guest whose allocator calls the data import it is allocating for.
const REENTRANT: &str = r#"(module
    (import "env" "echo" (func $echo (param i32 i32) (result i64)))
    (memory (export "memory") 1)
    (global $depth (mut i32) (i32.const 0))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
        (drop (call $echo (i32.const 0) (i32.const 4)))
        (i32.const 1024))
    (func (export "run") (result i64) (call $echo (i32.const 0) (i32.const 4)))
    (func (export "depth") (result i32) (global.get $depth))
    (func (export "plain") (result i64)
        (global.set $depth (i32.const 100))
        (call $echo (i32.const 0) (i32.const 0))))"#;

/// The re-entrant allocator ends at the first nested call with `Reentrant`, on the pooling
/// allocator and on `StackPool` without `max_stores`; the store goes on. Fails without the
/// guard: a chain of nested allocator failures on the pool, no answer on `StackPool`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reentrant_allocator_is_refused_on_both_allocations() {
    for allocation in [Allocation::Pooling, Allocation::StackPool] {
        let engine = AsyncEngine::builder()
            .allocation(allocation)
            .build()
            .unwrap();
        let mut linker = Linker::new(engine.engine());
        linker.func_wrap_host("env", "echo", echo).unwrap();
        let module = Module::new(engine.engine(), REENTRANT).unwrap();
        let mut store = engine.store(());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let run = instance.get_func(&mut store, "run").unwrap();
        let run = run.get_async().get0::<i64>(&store).unwrap();
        let err = run.call(&mut store).await.unwrap_err();
        let data = data_error(&err);
        assert_eq!(
            (data.kind(), data.param_name()),
            (
                &DataErrorKind::Reentrant {
                    inside: "cabi_realloc"
                },
                Some("text")
            ),
            "{allocation:?}: {err:?}"
        );
        assert_eq!(call0(&mut store, instance, "depth").await.unwrap(), 1);
        // Not inside any more: an empty result needs no allocator, and is not refused.
        let plain = instance.get_func(&mut store, "plain").unwrap();
        let plain = plain.get_async().get0::<i64>(&store).unwrap();
        assert_eq!(plain.call(&mut store).await.unwrap(), 0, "{allocation:?}");
    }
}

/// A guest marks the ABI version it speaks; the host refuses one it does not speak, takes
/// an unmarked guest for version 1, and refuses a memory the ABI cannot read, before
/// instantiation.
#[test]
fn check_module_tells_versions_and_memories_apart() {
    let mut config = Config::new();
    config.wasm_memory64(true);
    let engine = Engine::new(&config).unwrap();
    let abi = GuestAbi::new("any");
    let check = |wat: &str| check_module(&Module::new(&engine, wat).unwrap(), &abi);
    assert_eq!(
        check(r#"(module (func (export "async_wasm_abi_v1")))"#),
        Ok(1)
    );
    assert_eq!(check("(module (memory (export \"memory\") 1))"), Ok(1));
    assert_eq!(
        check(
            r#"(module (func (export "async_wasm_abi_v1")) (func (export "async_wasm_abi_v2")))"#
        ),
        Ok(1)
    );
    let err = check(r#"(module (func (export "async_wasm_abi_v2")))"#).unwrap_err();
    assert_eq!(
        err,
        AbiMismatch::Version {
            found: vec![2],
            supported: 1
        }
    );
    assert!(err.to_string().contains("version [2]"), "{err}");
    assert_eq!(
        check("(module (memory (export \"memory\") i64 1))"),
        Err(AbiMismatch::Memory64 { name: "memory" })
    );
    // The C guests carry the marker.
    let c = Module::new(&engine, tests::c_guests::DATA_GUEST).unwrap();
    assert!(c.get_export("async_wasm_abi_v1").is_some());
    assert_eq!(check_module(&c, &abi), Ok(1));
}

/// At call time too, a 64-bit memory has its own kind (0.2 said `AllocatorType`, at the
/// first result), and a zero-length parameter's pointer is not looked at. (A shared memory,
/// `SharedMemory`, needs wasmtime's `threads` feature, which these tests do not build.)
#[tokio::test(flavor = "current_thread")]
async fn memories_the_abi_cannot_read_have_their_own_kinds() {
    let mut config = Config::new();
    config.wasm_memory64(true);
    let engine = Engine::new(&config).unwrap();
    let mut linker = Linker::new(&engine);
    linker.func_wrap_host("env", "echo", echo).unwrap();
    let guest = |memory: &str| {
        format!(
            r#"(module
                (import "env" "echo" (func $echo (param i32 i32) (result i64)))
                (memory (export "memory") {memory})
                (func (export "run") (param i32 i32) (result i64)
                    (call $echo (local.get 0) (local.get 1))))"#
        )
    };
    let run = async |memory: &str, ptr: i32, len: i32| {
        let module = Module::new(&engine, guest(memory)).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let f = instance.get_func(&mut store, "run").unwrap();
        let f = f.get_async().get2::<i32, i32, i64>(&store).unwrap();
        f.call(&mut store, ptr, len).await
    };
    let err = run("i64 1", 0, 4).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::Memory64 { name: "memory" }
    );
    // Empty, at a pointer far outside the memory: read as empty, and the result is empty.
    assert_eq!(run("1", -1, 0).await.unwrap(), 0);
}

/// What a user logs with `{}` says what happened (0.2 printed only "error while executing
/// at wasm backtrace"), and `{:#}` adds where.
#[tokio::test(flavor = "current_thread")]
async fn the_first_line_of_a_data_error_says_what_happened() {
    let engine = AsyncEngine::builder()
        .allocation(Allocation::StackPool)
        .build()
        .unwrap();
    let err = attack(&engine).await;
    assert_eq!(
        err.to_string(),
        "host function `seven`, parameter `a`: 4294901760 bytes is over this host \
         function's cap of 16777216 bytes per call"
    );
    assert!(format!("{err:#}").contains("wasm backtrace"), "{err:#}");
    assert!(err.downcast_ref::<DataError>().is_some());
}
