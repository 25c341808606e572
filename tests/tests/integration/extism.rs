//! Extism plugins: WAT plugins written against Extism's ABI (what the PDKs compile to),
//! on real executors, through both shapes (`CompiledPlugin` per call, `Plugin`
//! long-lived).

use std::rc::Rc;
use std::time::Duration;

use async_wasm::AsyncEngine;
use async_wasm::data::Json;
use async_wasm::extism::{
    CapturedOutput, CompiledPlugin, ExtismError, HostContext, Limit, Manifest, ManifestError,
    PluginBuilder, WasiOutput, Wasm,
};
use futures::stream::{FuturesUnordered, StreamExt};
use tests::{DropCounter, pending};

/// A plugin module: the kernel and services imported as the Rust PDK imports them, two
/// helpers (`$bytes`: linear memory to a new block; `$out`: a block as the output), the
/// text `data` at linear address 0, and `body` (the exports, more imports go first).
pub fn plugin(imports: &str, data: &str, body: &str) -> String {
    format!(
        r#"(module
    {imports}
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "free" (func $free (param i64)))
    (import "extism:host/env" "length" (func $length (param i64) (result i64)))
    (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
    (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
    (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
    (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
    (import "extism:host/env" "input_offset" (func $input (result i64)))
    (import "extism:host/env" "input_length" (func $input_length (result i64)))
    (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
    (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (import "extism:host/env" "error_set" (func $error_set (param i64)))
    (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
    (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
    (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
    (import "extism:host/env" "log_info" (func $log_info (param i64)))
    (import "extism:host/env" "get_log_level" (func $get_log_level (result i32)))
    (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
    (memory (export "memory") 1)
    (data (i32.const 0) "{data}")
    (func $bytes (param $ptr i32) (param $len i32) (result i64)
        (local $h i64) (local $i i32)
        (local.set $h (call $alloc (i64.extend_i32_u (local.get $len))))
        (block $done (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
            (call $store_u8
                (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
                (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (local.get $h))
    (func $out (param $h i64)
        (call $output_set (local.get $h) (call $length (local.get $h))))
    (func (export "echo") (result i32)
        (call $output_set (call $input) (call $input_length))
        (i32.const 0))
    {body})"#
    )
}

/// The plugin most tests use. Data: "failed on purpose" at 0 (17 bytes), "n" at 17.
pub fn basic() -> String {
    plugin(
        r#"(import "extism:host/user" "shout" (func $shout (param i64) (result i64)))"#,
        "failed on purposen",
        r#"
    ;; output = config[input], or code 2 without a message when missing
    (func (export "config") (result i32) (local $v i64)
        (local.set $v (call $config_get (call $input)))
        (if (i64.eqz (local.get $v)) (then (return (i32.const 2))))
        (call $out (local.get $v))
        (i32.const 0))
    ;; var "n" (a u64) += 1, output it
    (func (export "vars") (result i32) (local $v i64) (local $n i64)
        (local.set $v (call $var_get (call $bytes (i32.const 17) (i32.const 1))))
        (if (i64.ne (local.get $v) (i64.const 0))
            (then (local.set $n (call $load_u64 (local.get $v)))))
        (local.set $n (i64.add (local.get $n) (i64.const 1)))
        (local.set $v (call $alloc (i64.const 8)))
        (call $store_u64 (local.get $v) (local.get $n))
        (call $var_set (call $bytes (i32.const 17) (i32.const 1)) (local.get $v))
        (local.set $v (call $alloc (i64.const 8)))
        (call $store_u64 (local.get $v) (local.get $n))
        (call $out (local.get $v))
        (i32.const 0))
    (func (export "fail") (result i32)
        (call $error_set (call $bytes (i32.const 0) (i32.const 17)))
        (i32.const 3))
    (func (export "fail_code_only") (result i32) (i32.const 7))
    ;; What a Rust PDK plugin's panic ends in.
    (func (export "trap") (result i32) unreachable)
    (func (export "fail_message_only") (result i32)
        (call $error_set (call $bytes (i32.const 0) (i32.const 17)))
        (i32.const 0))
    (func (export "shout") (result i32)
        (call $out (call $shout (call $input)))
        (i32.const 0))
    (func (export "log") (result i32)
        (call $log_info (call $bytes (i32.const 0) (i32.const 17)))
        (call $out (call $bytes (i32.const 0) (i32.const 0)))
        (drop (call $get_log_level))
        (i32.const 0))
    (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))
    (func (export "not_a_plugin_fn") (param i32) (result i32) (local.get 0))"#,
    )
}

fn engine() -> AsyncEngine {
    AsyncEngine::builder().max_stores(64).build().unwrap()
}

async fn shout(text: String) -> String {
    pending(1).await;
    text.to_uppercase()
}

fn compiled(engine: &AsyncEngine, manifest: Manifest) -> CompiledPlugin {
    PluginBuilder::new(manifest)
        .host_fn("shout", shout)
        .build(engine)
        .unwrap()
}

fn basic_manifest() -> Manifest {
    Manifest::new([basic().into_bytes()]).with_config_key("greeting", "hello")
}

fn extism_error(err: &wasmtime::Error) -> &ExtismError {
    err.downcast_ref::<ExtismError>()
        .unwrap_or_else(|| panic!("not an ExtismError: {err:?}"))
}

/// The behaviour every executor must give the same.
async fn scenario(plugin: CompiledPlugin) {
    let out: String = plugin.call("echo", "hi").await.unwrap();
    assert_eq!(out, "hi");
    let out: String = plugin.call("shout", "quiet").await.unwrap();
    assert_eq!(out, "QUIET");
    let out: Vec<u8> = plugin.call("config", "greeting").await.unwrap();
    assert_eq!(out, b"hello");
    let mut session = plugin.instantiate().await.unwrap();
    for n in 1..=3u64 {
        assert_eq!(session.call::<_, u64>("vars", "").await.unwrap(), n);
    }
    assert_eq!(session.var("n"), Some(&3u64.to_le_bytes()[..]));
    // A fresh instance per call: no vars carried.
    assert_eq!(plugin.call::<_, u64>("vars", "").await.unwrap(), 1);
}

#[test]
fn tokio_current_thread() {
    let plugin = compiled(&engine(), basic_manifest());
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(scenario(plugin));
}

#[test]
fn tokio_multi_thread() {
    let plugin = compiled(&engine(), basic_manifest());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| tokio::spawn(scenario(plugin.clone())))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn async_executor_and_block_on() {
    let plugin = compiled(&engine(), basic_manifest());
    let executor = async_executor::Executor::new();
    futures::executor::block_on(executor.run(scenario(plugin.clone())));
    futures::executor::block_on(scenario(plugin));
}

#[test]
fn plugin_errors_carry_message_and_code() {
    let plugin = compiled(&engine(), basic_manifest());
    futures::executor::block_on(async {
        let err = plugin.call::<_, String>("fail", "").await.unwrap_err();
        assert_eq!(
            extism_error(&err),
            &ExtismError::Plugin {
                message: Some("failed on purpose".into()),
                code: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "the plugin returned an error (code 3): failed on purpose"
        );
        let err = plugin
            .call::<_, String>("fail_code_only", "")
            .await
            .unwrap_err();
        assert_eq!(
            extism_error(&err),
            &ExtismError::Plugin {
                message: None,
                code: 7
            }
        );
        // A trap: typed as wasmtime's, and the first line says so (not the backtrace's).
        let err = plugin.call::<_, String>("trap", "").await.unwrap_err();
        assert_eq!(
            err.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::UnreachableCodeReached),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "wasm trap: wasm `unreachable` instruction executed"
        );
        // A message fails the call even with code 0, as in Extism.
        let err = plugin
            .call::<_, String>("fail_message_only", "")
            .await
            .unwrap_err();
        assert!(matches!(
            extism_error(&err),
            ExtismError::Plugin { code: 0, .. }
        ));
        let err = plugin
            .call::<_, String>("config", "absent")
            .await
            .unwrap_err();
        assert!(matches!(
            extism_error(&err),
            ExtismError::Plugin {
                code: 2,
                message: None
            }
        ));

        let err = plugin.call::<_, String>("nope", "").await.unwrap_err();
        assert!(
            matches!(extism_error(&err), ExtismError::MissingExport { name } if name == "nope")
        );
        let err = plugin
            .call::<_, String>("not_a_plugin_fn", "")
            .await
            .unwrap_err();
        assert!(matches!(extism_error(&err), ExtismError::ExportType { .. }));
        // A plugin error is a normal return: the long-lived instance carries on.
        let mut session = plugin.instantiate().await.unwrap();
        assert_eq!(session.call::<_, u64>("vars", "").await.unwrap(), 1);
        assert!(session.call::<_, String>("fail", "").await.is_err());
        assert_eq!(session.call::<_, u64>("vars", "").await.unwrap(), 2);
    });
}

#[derive(Debug)]
struct Unavailable;

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store is unavailable")
    }
}

impl std::error::Error for Unavailable {}

#[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
struct Key {
    key: String,
}

/// One plugin importing host functions of every shape: JSON, numbers, no result, a
/// context, an error.
fn host_fn_plugin() -> String {
    plugin(
        r#"(import "extism:host/user" "lookup" (func $lookup (param i64) (result i64)))
    (import "extism:host/user" "add" (func $add (param i64 i64) (result i64)))
    (import "extism:host/user" "record" (func $record (param i64)))
    (import "extism:host/user" "whoami" (func $whoami (result i64)))
    (import "extism:host/user" "broken" (func $broken (param i64) (result i64)))
    (import "kv" "len" (func $kv_len (param i64) (result i64)))"#,
        "",
        r#"
    (func (export "lookup") (result i32) (call $out (call $lookup (call $input))) (i32.const 0))
    ;; input: two i64s; output: their sum (8 bytes)
    (func (export "add") (result i32) (local $a i64) (local $b i64)
        (local.set $a (call $alloc (i64.const 8)))
        (call $store_u64 (local.get $a) (call $input_load_u64 (i64.const 0)))
        (local.set $b (call $alloc (i64.const 8)))
        (call $store_u64 (local.get $b) (call $input_load_u64 (i64.const 8)))
        (call $out (call $add (local.get $a) (local.get $b)))
        (i32.const 0))
    (func (export "record") (result i32) (call $record (call $input)) (i32.const 0))
    (func (export "whoami") (result i32) (call $out (call $whoami)) (i32.const 0))
    (func (export "broken") (result i32) (call $out (call $broken (call $input))) (i32.const 0))
    (func (export "kv_len") (result i32) (call $out (call $kv_len (call $input))) (i32.const 0))
    (func (export "made_up") (result i32) (call $out (call $lookup (i64.const 4242))) (i32.const 0))"#,
    )
}

fn host_fn_builder(manifest: Manifest) -> PluginBuilder {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx = std::sync::Mutex::new(tx);
    std::mem::forget(rx);
    PluginBuilder::new(manifest)
        .host_fn("lookup", |Json(key): Json<Key>| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Json(serde_json::json!({ "value": key.key.repeat(2) }))
        })
        .host_fn("add", |a: i64, b: i64| async move { a + b })
        .host_fn("record", move |item: String| {
            let _ = tx.lock().unwrap().send(item);
            async {}
        })
        .host_fn("whoami", |cx: HostContext| async move {
            format!("{} #{}", cx.config("name").unwrap_or("?"), cx.plugin_id())
        })
        .host_fn("broken", |_: String| async move {
            Err::<String, _>(Unavailable)
        })
        .host_fn_in_namespace("kv", "len", |key: Vec<u8>| async move { key.len() as u64 })
}

#[tokio::test]
async fn host_functions_of_every_shape() {
    let engine = engine();
    let manifest = Manifest::new([host_fn_plugin().into_bytes()]).with_config_key("name", "p");
    let plugin = host_fn_builder(manifest).build(&engine).unwrap();

    let out: Json<serde_json::Value> = plugin
        .call("lookup", Json(Key { key: "ab".into() }))
        .await
        .unwrap();
    assert_eq!(out.0, serde_json::json!({ "value": "abab" }));
    let input: Vec<u8> = [40i64.to_le_bytes(), 2i64.to_le_bytes()].concat();
    assert_eq!(plugin.call::<_, i64>("add", input).await.unwrap(), 42);
    let out: String = plugin.call("record", "x").await.unwrap();
    assert_eq!(out, "");
    let mut session = plugin.instantiate().await.unwrap();
    let out: String = session.call("whoami", "").await.unwrap();
    assert_eq!(out, format!("p #{}", session.id()));
    assert_eq!(plugin.call::<_, u64>("kv_len", "four").await.unwrap(), 4);

    // A host function's error ends the call with that error, which downcasts.
    let err = plugin.call::<_, String>("broken", "x").await.unwrap_err();
    assert!(err.downcast_ref::<Unavailable>().is_some(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "host function `broken` failed: the store is unavailable"
    );
    // Bad JSON for a Json parameter: a typed error naming the function and parameter.
    let err = plugin
        .call::<_, String>("lookup", "not json")
        .await
        .unwrap_err();
    assert!(matches!(
        extism_error(&err),
        ExtismError::Data { site: async_wasm::extism::DataSite::Param { function, index: 0 }, .. } if function == "lookup"
    ));
    // A number of the wrong size.
    let err = plugin
        .call::<_, i64>("add", vec![1u8; 12])
        .await
        .unwrap_err();
    assert!(matches!(
        extism_error(&err),
        ExtismError::Kernel { .. } | ExtismError::Data { .. }
    ));
    // The long-lived plugin got a fresh instance after the failed call, same id.
    let id = session.id();
    assert!(session.call::<_, String>("broken", "x").await.is_err());
    let out: String = session.call("whoami", "").await.unwrap();
    assert_eq!(out, format!("p #{id}"));
}

#[test]
fn a_missing_host_function_fails_the_build() {
    let err = PluginBuilder::new(Manifest::new([host_fn_plugin().into_bytes()]))
        .build(&engine())
        .unwrap_err();
    assert!(format!("{err:#}").contains("lookup"), "{err:#}");
}

/// More calls than the engine has stores: each waits for a free slot instead of failing
/// with wasmtime's pool limit, and all are served. Fails when `CompiledPlugin::call` makes
/// its store without a slot (most calls then fail at the pool's bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_max_stores_wait_for_a_slot() {
    let engine = AsyncEngine::builder().max_stores(4).build().unwrap();
    let plugin = host_fn_builder(Manifest::new([host_fn_plugin().into_bytes()]))
        .build(&engine)
        .unwrap();
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let plugin = plugin.clone();
            tokio::spawn(async move {
                let out: Json<serde_json::Value> = plugin
                    .call("lookup", Json(Key { key: i.to_string() }))
                    .await?;
                assert_eq!(out.0["value"], format!("{i}{i}"));
                wasmtime::Result::<()>::Ok(())
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn many_calls_in_flight_on_one_thread() {
    let engine = AsyncEngine::builder().max_stores(600).build().unwrap();
    let plugin = host_fn_builder(Manifest::new([host_fn_plugin().into_bytes()]))
        .build(&engine)
        .unwrap();
    let mut calls: FuturesUnordered<_> = (0..500)
        .map(|i| {
            let plugin = plugin.clone();
            async move {
                let out: Json<serde_json::Value> = plugin
                    .call("lookup", Json(Key { key: i.to_string() }))
                    .await
                    .unwrap();
                assert_eq!(out.0["value"], format!("{i}{i}"));
            }
        })
        .collect();
    let mut done = 0;
    while calls.next().await.is_some() {
        done += 1;
    }
    assert_eq!(done, 500);
}

#[test]
fn local_host_functions() {
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let plugin = PluginBuilder::new(Manifest::new([basic().into_bytes()]))
        .host_fn_local("shout", {
            let seen = Rc::clone(&seen);
            move |text: String| {
                let seen = Rc::clone(&seen);
                async move {
                    pending(1).await;
                    seen.borrow_mut().push(text.clone()); // an Rc held across an await
                    text.to_uppercase()
                }
            }
        })
        .build(&engine())
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let out: String = plugin.call("shout", "a").await.unwrap();
        assert_eq!(out, "A");
    });
    let mut pool = futures::executor::LocalPool::new();
    let out: String = pool.run_until(plugin.call("shout", "b")).unwrap();
    assert_eq!(out, "B");
    assert_eq!(*seen.borrow(), ["a", "b"]);
}

#[test]
fn cancelled_calls_leave_a_usable_plugin_with_its_vars() {
    let dropped = DropCounter::default();
    let guard_source = dropped.clone();
    let plugin = PluginBuilder::new(basic_manifest())
        .host_fn("shout", move |_: String| {
            let guard = guard_source.guard();
            async move {
                let _guard = guard;
                futures::future::pending::<String>().await
            }
        })
        .build(&engine())
        .unwrap();
    futures::executor::block_on(async {
        let mut session = plugin.instantiate().await.unwrap();
        assert_eq!(session.call::<_, u64>("vars", "").await.unwrap(), 1);
        {
            let call = session.call::<_, String>("shout", "x");
            futures::pin_mut!(call);
            assert!(futures::poll!(call.as_mut()).is_pending());
        }
        assert_eq!(
            dropped.dropped(),
            1,
            "the host function's future was dropped"
        );
        assert_eq!(session.call::<_, u64>("vars", "").await.unwrap(), 2);
    });
}

#[test]
fn timeout_ms_stops_a_spinning_plugin() {
    let engine = AsyncEngine::builder()
        .yield_every(Duration::from_millis(1))
        .build()
        .unwrap();
    let plugin = compiled(
        &engine,
        basic_manifest().with_timeout(Duration::from_millis(30)),
    );
    futures::executor::block_on(async {
        let mut session = plugin.instantiate().await.unwrap();
        let err = session.call::<_, String>("spin", "").await.unwrap_err();
        assert_eq!(
            extism_error(&err),
            &ExtismError::Timeout {
                timeout: Duration::from_millis(30)
            }
        );
        assert_eq!(
            session.call::<_, String>("echo", "next").await.unwrap(),
            "next"
        );
    });
}

/// The engine's timeout bounds each call and is typed (the engine's `DeadlineExceeded`
/// under `ExtismError::Timeout`), also when the manifest's `timeout_ms` is longer. Fails
/// with the longer `timeout_ms` when the manifest's deadline replaces the engine's (the
/// call then spins for the manifest's 5 s).
#[test]
fn the_engines_timeout_is_per_call_and_typed() {
    let engine = AsyncEngine::builder()
        .timeout(Duration::from_millis(30))
        .build()
        .unwrap();
    for manifest in [
        basic_manifest(),
        basic_manifest().with_timeout(Duration::from_secs(5)),
    ] {
        let plugin = compiled(&engine, manifest);
        futures::executor::block_on(async {
            let err = plugin.call::<_, String>("spin", "").await.unwrap_err();
            assert_eq!(
                extism_error(&err),
                &ExtismError::Timeout {
                    timeout: Duration::from_millis(30)
                }
            );
            let deadline = err.downcast_ref::<async_wasm::DeadlineExceeded>();
            assert_eq!(
                deadline.map(|d| d.timeout()),
                Some(Duration::from_millis(30))
            );

            let mut session = plugin.instantiate().await.unwrap();
            let err = session.call::<_, String>("spin", "").await.unwrap_err();
            assert_eq!(
                extism_error(&err),
                &ExtismError::Timeout {
                    timeout: Duration::from_millis(30)
                }
            );
            // Each call of a long-lived plugin gets the engine's whole timeout again.
            std::thread::sleep(Duration::from_millis(40));
            assert_eq!(
                session.call::<_, String>("echo", "next").await.unwrap(),
                "next"
            );
        });
    }
}

/// The shapes a server needs: a compiled plugin shared across tasks and threads, and a
/// long-lived plugin that moves between threads.
#[test]
fn plugins_are_send_and_sync() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    fn movable<T: Send + 'static>() {}
    shared::<CompiledPlugin>();
    movable::<async_wasm::extism::Plugin>();
}

#[test]
fn max_pages_bounds_linear_memory_too() {
    let wat = r#"(module (memory 3) (func (export "run") (result i32) (i32.const 0)))"#;
    let plugin = CompiledPlugin::builder(Manifest::new([wat.as_bytes()]).with_memory_max(2))
        .build(&engine())
        .unwrap();
    let err = futures::executor::block_on(plugin.call::<_, String>("run", "")).unwrap_err();
    assert!(matches!(
        extism_error(&err),
        ExtismError::Limit {
            limit: Limit::Memory,
            max: 131072,
            ..
        }
    ));
}

#[test]
fn manifests_from_json_files_and_hashes() {
    let wat = r#"(module (func (export "run") (result i32) (i32.const 0)))"#;
    let dir = std::env::temp_dir().join(format!("aw-extism-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plugin.wat");
    std::fs::write(&path, wat).unwrap();
    let engine = engine();
    // sha256 of the text above
    use sha2_hex::hex_sha256;
    let good = Manifest::new([Wasm::file(&path).with_hash(hex_sha256(wat.as_bytes()))]);
    let plugin = CompiledPlugin::builder(good).build(&engine).unwrap();
    assert_eq!(
        futures::executor::block_on(plugin.call::<_, String>("run", "")).unwrap(),
        ""
    );
    let bad = Manifest::new([Wasm::file(&path).with_hash("00")]);
    let err = CompiledPlugin::builder(bad).build(&engine).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<ManifestError>(),
        Some(ManifestError::HashMismatch { .. })
    ));
    let json = format!(
        r#"{{"wasm": [{{"path": {:?}}}], "config": {{"k": "v"}}, "allowed_paths": {{}}}}"#,
        path
    );
    let manifest = Manifest::from_json(&json).unwrap();
    assert_eq!(manifest.config["k"], "v");
    CompiledPlugin::builder(manifest).build(&engine).unwrap();
    let url = Manifest::from_json(r#"{"wasm": [{"url": "https://example.com/p.wasm"}]}"#).unwrap();
    let err = CompiledPlugin::builder(url).build(&engine).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<ManifestError>(),
        Some(ManifestError::Unsupported { .. })
    ));
    assert!(Manifest::from_json(r#"{"wasm": [], "unknown": 1}"#).is_err());
    // A file that is no module: the first line names it, wasmtime's reason follows.
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, [0xde, 0xad, 0xbe, 0xef]).unwrap();
    let err = CompiledPlugin::builder(Manifest::new([Wasm::file(&junk)]))
        .build(&engine)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot compile the plugin {}", junk.display())
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A WASI build loaded without WASI: the error says how to give it WASI.
#[test]
fn a_wasi_plugin_without_wasi_says_what_to_enable() {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write"
            (func (param i32 i32 i32 i32) (result i32)))
        (func (export "run") (result i32) (i32.const 0)))"#;
    let manifest = Manifest::new([wat.as_bytes()]);
    let err = CompiledPlugin::builder(manifest.clone())
        .build(&engine())
        .unwrap_err();
    assert!(
        err.to_string().contains("PluginBuilder::wasi(true)"),
        "{err:#}"
    );
    assert!(format!("{err:#}").contains("fd_write"), "{err:#}");
    CompiledPlugin::builder(manifest)
        .wasi(true)
        .build(&engine())
        .unwrap();
}

/// sha256 through the same crate the runtime uses (wasmtime builds it).
mod sha2_hex {
    pub fn hex_sha256(bytes: &[u8]) -> String {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(bytes)?;
                child.wait_with_output()
            })
            .expect("sha256sum");
        String::from_utf8(out.stdout).unwrap()[..64].to_owned()
    }
}

#[test]
fn wasi_output_is_captured() {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "printed\n")
        (func (export "print") (result i32)
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 8))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
            (i32.const 0)))"#;
    let (stdout, stderr) = (CapturedOutput::new(1024), CapturedOutput::new(1024));
    let plugin = CompiledPlugin::builder(Manifest::new([wat.as_bytes()]))
        .wasi_output(
            WasiOutput::Capture(stdout.clone()),
            WasiOutput::Capture(stderr.clone()),
        )
        .build(&engine())
        .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(plugin.call::<_, String>("print", ""))
        .unwrap();
    assert_eq!(stdout.contents(), b"printed\n");
    assert_eq!(stderr.contents(), b"printed\n");
    // Without WASI, such a plugin does not link.
    assert!(
        CompiledPlugin::builder(Manifest::new([wat.as_bytes()]))
            .build(&engine())
            .is_err()
    );
}

#[test]
fn logs_and_http() {
    let plugin = compiled(&engine(), basic_manifest());
    futures::executor::block_on(async {
        assert_eq!(plugin.call::<_, String>("log", "").await.unwrap(), "");
    });
}

/// A long-lived plugin whose call failed gets its fresh instance in the slot of the old
/// one, with its vars: on an engine with one instance slot, the next call succeeds. Fails
/// when the fresh instance is made while the old one still holds the slot (every later
/// call then fails at the pool's bound, and the vars are lost at the first).
#[test]
fn a_failed_call_recovers_on_an_engine_with_one_slot() {
    let engine = AsyncEngine::builder().max_stores(1).build().unwrap();
    let plugin = PluginBuilder::new(basic_manifest())
        .host_fn("shout", |text: String| async move {
            match text.as_str() {
                "fail" => Err(std::io::Error::other("refused")),
                _ => Ok(text.to_uppercase()),
            }
        })
        .build(&engine)
        .unwrap();
    futures::executor::block_on(async {
        let mut session = plugin.instantiate().await.unwrap();
        assert_eq!(session.call::<_, u64>("vars", "").await.unwrap(), 1);
        let err = session
            .call::<_, String>("shout", "fail")
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<std::io::Error>().is_some(), "{err:?}");
        assert_eq!(session.var("n"), Some(&1u64.to_le_bytes()[..]));
        assert_eq!(session.call::<_, u64>("vars", "").await.unwrap(), 2);
        assert_eq!(
            session.call::<_, String>("shout", "ok").await.unwrap(),
            "OK"
        );
    });
}
