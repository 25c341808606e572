//! The real Extism plugins (`guests/extism/*.wasm`, built with Extism's Rust and
//! AssemblyScript PDKs, plain and WASI) on async-wasm's Extism host: every kind of input and
//! output, config, vars, logs, errors with codes, host functions that await real I/O,
//! `http_request` against a loopback server, WASI output, and the hostile exports, on tokio
//! (current-thread and multi-thread) and on async-executor.

use std::time::Duration;

use async_wasm::AsyncEngine;
use async_wasm::data::Json;
use async_wasm::extism::{
    CompiledPlugin, ExtismError, Limit, Manifest, ManifestError, PluginBuilder, Violation,
};
use serde::Deserialize;

use super::extism_fixtures::{
    Built, Fetched, HostFailed, LogCapture, PLUGINS, build, engine, extism_error, http_server,
    manifest, plugin_error, plugin_path, with_host_fns,
};

#[derive(Deserialize, Debug, PartialEq)]
struct Vowels {
    count: u64,
    total: u64,
    vowels: String,
}

#[derive(Deserialize)]
struct Greeting {
    greeting: String,
}

/// Everything a plugin does, on whatever executor runs it (with tokio's I/O and time at
async fn scenario(engine: AsyncEngine, file: &'static str, wasi: bool) {
    let Built {
        plugin,
        stdout,
        stderr,
    } = build(&engine, file, wasi, manifest(file));
    let is_rust = file.starts_with("rust");

    // Input and output of each type.
    let out: String = plugin.call("echo", "hello, extism").await.unwrap();
    assert_eq!(out, "hello, extism", "{file}");
    let out: Vec<u8> = plugin.call("echo", vec![0xff, 0, 1, 0x80]).await.unwrap();
    assert_eq!(out, [0xff, 0, 1, 0x80], "{file}");
    let out: String = plugin.call("echo", "").await.unwrap();
    assert_eq!(out, "", "{file}");
    let out: Json<Greeting> = plugin
        .call("greet", Json(serde_json::json!({"name": "Zoë"})))
        .await
        .unwrap();
    assert_eq!(out.0.greeting, "Hello, Zoë!", "{file}");
    let err = plugin
        .call::<_, String>("greet", "not json")
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err).1, if is_rust { -1 } else { 1 }, "{file}");

    // Config.
    let out: String = plugin.call("config", "color").await.unwrap();
    assert_eq!(out, "blue", "{file}");
    let err = plugin
        .call::<_, String>("config", "missing")
        .await
        .unwrap_err();
    assert_eq!(
        plugin_error(&err),
        (Some("no config key \"missing\""), 1),
        "{file}"
    );

    // Vars across calls on one `Plugin`; a fresh instance per `CompiledPlugin::call`.
    let mut session = plugin.instantiate().await.unwrap();
    for n in 1..=3 {
        let out: String = session.call("vars", "").await.unwrap();
        assert_eq!(out, n.to_string(), "{file}");
    }
    assert_eq!(session.var("n"), Some(&b"3"[..]), "{file}");
    for total in [3, 6] {
        let out: Json<Vowels> = session.call("count_vowels", "Hello, World!").await.unwrap();
        let expected = Vowels {
            count: 3,
            total,
            vowels: "aeiouAEIOU".into(),
        };
        assert_eq!(out.0, expected, "{file}");
    }
    let out: String = plugin.call("vars", "").await.unwrap();
    assert_eq!(out, "1", "{file}");

    // Errors with codes; the plugin goes on.
    let err = session.call::<_, String>("fail", "").await.unwrap_err();
    assert_eq!(plugin_error(&err), (Some("failed on purpose"), 3), "{file}");
    let out: String = session.call("vars", "").await.unwrap();
    assert_eq!(out, "4", "{file}");

    // Host functions: strings (a TCP round trip), JSON (a timer), numbers, an async lock.
    let out: String = session.call("host_echo", "naïve ☕").await.unwrap();
    assert_eq!(out, "naïve ☕", "{file}");
    let out: String = session.call("lookup", "ключ").await.unwrap();
    assert_eq!(out, "value-of-ключ", "{file}");
    let out: String = session.call("kv", "a=1").await.unwrap();
    assert_eq!(out, "1", "{file}");
    let out: String = plugin.call("kv", "b=2").await.unwrap();
    assert_eq!(out, "2", "{file}");
    let out: String = session.call("add", r#"{"a":40,"b":2}"#).await.unwrap();
    assert_eq!(out, "42", "{file}");
    // A host function's error ends the call with it, as under Extism; the next call works.
    let err = session
        .call::<_, String>("host_fail", "x")
        .await
        .unwrap_err();
    assert_eq!(
        err.root_cause().downcast_ref::<HostFailed>(),
        Some(&HostFailed("x".into())),
        "{file}: {err:?}"
    );
    // The first line names the host function and says what its error says.
    assert!(
        err.to_string()
            .starts_with("host function `host_fail` failed: "),
        "{file}: {err}"
    );
    assert!(
        err.to_string()
            .ends_with(&HostFailed("x".into()).to_string()),
        "{file}: {err}"
    );
    let out: String = session.call("vars", "").await.unwrap();
    assert_eq!(out, "5", "{file}: vars survive a failed call");

    // Many calls in flight, each waiting on its timer.
    let calls = (0..32).map(|i| {
        let plugin = plugin.clone();
        async move { plugin.call::<_, String>("lookup", format!("k{i}")).await }
    });
    let outs = futures::future::try_join_all(calls).await.unwrap();
    assert!(
        outs.iter()
            .enumerate()
            .all(|(i, o)| *o == format!("value-of-k{i}"))
    );

    // HTTP against the loopback server.
    let port = http_server();
    let out: Json<Fetched> = plugin
        .call("http_get", format!("http://127.0.0.1:{port}/hello"))
        .await
        .unwrap();
    let expected = Fetched {
        status: 200,
        body: "hello from /hello".into(),
    };
    assert_eq!(out.0, expected, "{file}");

    // No output: empty.
    let out: Vec<u8> = plugin.call("no_output", "").await.unwrap();
    assert!(out.is_empty(), "{file}");

    // WASI output, captured.
    if wasi {
        let out: String = plugin.call("wasi_print", "").await.unwrap();
        assert_eq!(out, "printed", "{file}");
        let (out, err) = (stdout.contents(), stderr.contents());
        if is_rust {
            assert_eq!(out, b"hello from wasi_print on stdout\n", "{file}");
            assert_eq!(err, b"hello from wasi_print on stderr\n", "{file}");
        } else {
            // AssemblyScript's WASI shim writes `console.error` to stdout, after `Error: `.
            let both = "hello from wasi_print on stdout\nError: hello from wasi_print on stderr\n";
            assert_eq!(String::from_utf8_lossy(&out), both, "{file}");
            assert!(err.is_empty(), "{file}");
        }
    }

    hostile(&plugin, file).await;
}

/// The hostile exports: each a typed error, and the next call (on the same `Plugin`) works.
async fn hostile(plugin: &CompiledPlugin, file: &str) {
    let mut session = plugin.instantiate().await.unwrap();
    type Check = fn(&ExtismError) -> bool;
    let checks: [(&str, Check); 4] = [
        (
            "alloc_huge",
            |e| matches!(e, ExtismError::Limit { limit: Limit::Memory, requested, .. } if *requested >= 1 << 63),
        ),
        (
            "load_bad",
            |e| matches!(e, ExtismError::Kernel { function, violation: Violation::OutsideBlock { addr: 0x7fff0000, len: 8 } } if function == "load_u64"),
        ),
        (
            "output_bad",
            |e| matches!(e, ExtismError::Kernel { function, violation: Violation::RangeNotInBlock { len: 64, .. } } if function == "output_set"),
        ),
        ("var_huge", |e| {
            matches!(
                e,
                ExtismError::Limit {
                    limit: Limit::Vars,
                    max: 1_048_576,
                    ..
                }
            )
        }),
    ];
    for (export, check) in checks {
        let err = session.call::<_, Vec<u8>>(export, "").await.unwrap_err();
        assert!(check(extism_error(&err)), "{file} {export}: {err:?}");
        let out: String = session.call("echo", "next").await.unwrap();
        assert_eq!(out, "next", "{file} after {export}");
        let out: String = plugin.call("echo", "next").await.unwrap();
        assert_eq!(out, "next", "{file} after {export}");
    }
}

#[test]
fn on_tokio_current_thread() {
    let engine = engine();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (file, wasi) in PLUGINS {
            scenario(engine.clone(), file, wasi).await;
        }
    });
}

#[test]
fn on_tokio_multi_thread() {
    let engine = engine();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = PLUGINS
            .into_iter()
            .map(|(file, wasi)| tokio::spawn(scenario(engine.clone(), file, wasi)))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// async-executor polls the calls; a tokio runtime in the background gives the host
/// functions (and the HTTP client) their sockets and timers, as a server on another
/// executor would.
#[test]
fn on_async_executor() {
    let engine = engine();
    let reactor = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _tokio = reactor.enter();
    let executor = async_executor::Executor::new();
    let tasks: Vec<_> = PLUGINS
        .into_iter()
        .map(|(file, wasi)| executor.spawn(scenario(engine.clone(), file, wasi)))
        .collect();
    futures::executor::block_on(executor.run(futures::future::join_all(tasks)));
}

#[test]
fn logs_reach_tracing() {
    let capture = LogCapture::default();
    let engine = engine();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(capture.clone(), || {
        for (file, wasi) in PLUGINS {
            let Built { plugin, .. } = build(&engine, file, wasi, manifest(file));
            let (out, id) = rt.block_on(async {
                let mut session = plugin.instantiate().await.unwrap();
                (
                    session.call::<_, String>("log", "").await.unwrap(),
                    session.id(),
                )
            });
            assert_eq!(out, "ok");
            let lines = capture.lines();
            let expected = [
                (tracing::Level::TRACE, "a trace line"),
                (tracing::Level::DEBUG, "a debug line"),
                (tracing::Level::INFO, "an info line"),
                (tracing::Level::WARN, "a warn line"),
                (tracing::Level::ERROR, "an error line"),
            ]
            .map(|(level, text)| (level, text.to_owned(), Some(id)));
            assert_eq!(lines, expected, "{file}");
        }
    });
}

#[test]
fn timeout_ms_needs_an_engine_with_ticks() {
    let manifest =
        Manifest::new([plugin_path("rust_plugin.wasm")]).with_timeout(Duration::from_millis(500));
    // No `timeout`, no `yield_every`: nothing would check the deadline.
    let err = with_host_fns(PluginBuilder::new(manifest))
        .build(&engine())
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<ManifestError>(),
        Some(&ManifestError::TimeoutNeedsTicks { timeout_ms: 500 }),
    );
    // With either, the manifest builds and its calls run.
    let echo = r#"(module
        (import "extism:host/env" "input_offset" (func $input (result i64)))
        (import "extism:host/env" "input_length" (func $input_length (result i64)))
        (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
        (func (export "echo") (result i32)
            (call $output_set (call $input) (call $input_length))
            (i32.const 0)))"#;
    let manifest = Manifest::new([echo.as_bytes()]).with_timeout(Duration::from_millis(500));
    for ticking in [
        AsyncEngine::builder().timeout(Duration::from_secs(5)),
        AsyncEngine::builder().yield_every(Duration::from_millis(1)),
    ] {
        let plugin = PluginBuilder::new(manifest.clone())
            .build(&ticking.build().unwrap())
            .unwrap();
        let out: String = futures::executor::block_on(plugin.call("echo", "on time")).unwrap();
        assert_eq!(out, "on time");
    }
}

/// The local mode on a real plugin: `kv_set`/`kv_get` over an `Rc<RefCell<..>>` held across
/// a timer's `.await`, on a `LocalSet` and on futures' `LocalPool`.
#[test]
fn local_host_functions_on_a_real_plugin() {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    let store = Rc::new(RefCell::new(BTreeMap::<String, String>::new()));
    let set = Rc::clone(&store);
    let get = Rc::clone(&store);
    // The contract's host functions, then local `kv_*` in place of the shared ones (a name
    // added again keeps the last).
    let plugin = with_host_fns(PluginBuilder::new(manifest("rust_plugin.wasm")))
        .host_fn_local("kv_set", move |key: String, value: String| {
            let store = Rc::clone(&set);
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                store.borrow_mut().insert(key, value);
            }
        })
        .host_fn_local("kv_get", move |key: String| {
            let store = Rc::clone(&get);
            async move {
                let value = store.borrow().get(&key).cloned();
                tokio::task::yield_now().await;
                value.unwrap_or_default()
            }
        })
        .build(&engine())
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut session = plugin.instantiate().await.unwrap();
        let out: String = session.call("kv", "a=1").await.unwrap();
        assert_eq!(out, "1");
        let out: String = plugin.call("kv", "b=2").await.unwrap();
        assert_eq!(out, "2");
    });
    assert_eq!(store.borrow()["a"], "1");
    assert_eq!(store.borrow()["b"], "2");
    // On another single-threaded executor, the timer from a tokio runtime in the background
    // (a current-thread runtime drives its timers only inside its own `block_on`).
    let reactor = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _tokio = reactor.enter();
    let mut pool = futures::executor::LocalPool::new();
    let out: String = pool.run_until(plugin.call("kv", "c=3")).unwrap();
    assert_eq!(out, "3");
}
