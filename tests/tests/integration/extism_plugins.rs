//! The real Extism plugins (`guests/extism/*.wasm`, built with Extism's Rust and
//! AssemblyScript PDKs, plain and WASI) on async-wasm's Extism host: every kind of input and
//! output, config, vars, logs, errors with codes, host functions that await real I/O (a
//! loopback TCP echo, a tokio timer, an async lock), `http_request` against a loopback
//! server, WASI output, and the hostile exports, on tokio (current-thread and
//! multi-thread) and on async-executor.
//!
//! The fixtures here (host functions, servers, the log capture) serve `extism_conformance.rs`
//! too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_wasm::AsyncEngine;
use async_wasm::data::Json;
use async_wasm::extism::{
    CapturedOutput, CompiledPlugin, ExtismError, HttpError, Limit, Manifest, ManifestError,
    PluginBuilder, Violation, WasiOutput,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The four plugins: file name, and whether it is a WASI build.
pub const PLUGINS: [(&str, bool); 4] = [
    ("rust_plugin.wasm", false),
    ("rust_plugin_wasi.wasm", true),
    ("as_plugin.wasm", false),
    ("as_plugin_wasi.wasm", true),
];

pub fn plugin_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/extism")
        .join(file)
}

// ---------------------------------------------------------------------------------------
// Host functions: the contract's (guests/extism/README.md), each awaiting real I/O.

/// A host function's own error: what `host_fail` always answers.
#[derive(Debug, PartialEq, Eq)]
pub struct HostFailed(pub String);

impl std::fmt::Display for HostFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The words of extism-compare's host, so that root causes compare equal.
        write!(f, "host_fail refused {:?}", self.0)
    }
}

impl std::error::Error for HostFailed {}

#[derive(Deserialize)]
pub struct Query {
    key: String,
}

#[derive(Serialize)]
pub struct Answer {
    value: String,
}

/// A TCP echo server on 127.0.0.1 (one per process): reads a connection to its end, writes
/// it back, closes.
fn echo_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    if stream.read_to_end(&mut bytes).is_ok() {
                        let _ = stream.write_all(&bytes);
                    }
                });
            }
        });
        addr
    })
}

/// `host_echo(String) -> String`: the text, through a loopback TCP round trip.
pub async fn host_echo(text: String) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(echo_server()).await?;
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await?;
    let mut back = String::new();
    stream.read_to_string(&mut back).await?;
    Ok(back)
}

/// `lookup(Json {"key": k}) -> Json {"value": "value-of-<k>"}`, after a timer.
pub async fn lookup(Json(query): Json<Query>) -> Json<Answer> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    Json(Answer {
        value: format!("value-of-{}", query.key),
    })
}

/// The contract's host functions, `kv_*` over a store of this plugin's behind an async
/// lock.
pub fn with_host_fns(builder: PluginBuilder) -> PluginBuilder {
    let store = Arc::new(tokio::sync::Mutex::new(BTreeMap::<String, String>::new()));
    let set = Arc::clone(&store);
    builder
        .host_fn("host_echo", host_echo)
        .host_fn("lookup", lookup)
        .host_fn("kv_set", move |key: String, value: String| {
            let store = Arc::clone(&set);
            async move {
                store.lock().await.insert(key, value);
            }
        })
        .host_fn("kv_get", move |key: String| {
            let store = Arc::clone(&store);
            async move { store.lock().await.get(&key).cloned().unwrap_or_default() }
        })
        .host_fn("add", |a: i64, b: i64| async move { a.wrapping_add(b) })
        .host_fn("host_fail", |text: String| async move {
            Err::<String, _>(HostFailed(text))
        })
}

// ---------------------------------------------------------------------------------------
// A loopback HTTP server.

/// An HTTP/1.1 server on 127.0.0.1 (one per process), as extism-compare's: `GET /missing`
/// answers 404 `not found`, `/big/<n>` 200 with `n` bytes of `x`, any other path 200
/// `hello from <path>`. Returns its port.
pub fn http_server() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || answer(stream));
            }
        });
        port
    })
}

fn answer(mut stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path.strip_prefix("/big/") {
        _ if path == "/missing" => ("404 Not Found", "not found".to_owned()),
        Some(n) => ("200 OK", "x".repeat(n.parse().unwrap_or(0))),
        None => ("200 OK", format!("hello from {path}")),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nX-Served-By: loopback\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

// ---------------------------------------------------------------------------------------
// Logs, through a `tracing` subscriber of the test's own.

/// A log line: its level, message and `plugin` field.
pub type LogLine = (tracing::Level, String, Option<u64>);

/// Collects the events of async-wasm's plugin logs.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<LogLine>>>);

impl LogCapture {
    pub fn lines(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    plugin: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "plugin" {
            self.plugin = Some(value);
        }
    }
}

impl tracing::Subscriber for LogCapture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("async_wasm")
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.message, fields.plugin));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------------------
// The plugins, built.

/// The engine every test here shares, and with it one compilation of each plugin: a plugin
/// of each file is kept alive, so that every later build on this engine reuses its module.
pub fn engine() -> AsyncEngine {
    static SHARED: OnceLock<(AsyncEngine, Vec<CompiledPlugin>)> = OnceLock::new();
    let (engine, _) = SHARED.get_or_init(|| {
        let engine = AsyncEngine::builder().max_stores(256).build().unwrap();
        let keep = PLUGINS
            .into_iter()
            .map(|(file, wasi)| build(&engine, file, wasi, manifest(file)).plugin)
            .collect();
        (engine, keep)
    });
    engine.clone()
}

/// The manifest the tests use: the plugin, `color = blue`, 127.0.0.1 allowed.
fn manifest(file: &str) -> Manifest {
    Manifest::new([plugin_path(file)])
        .with_config_key("color", "blue")
        .with_allowed_host("127.0.0.1")
}

struct Built {
    plugin: CompiledPlugin,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

fn build(engine: &AsyncEngine, file: &str, wasi: bool, manifest: Manifest) -> Built {
    let (stdout, stderr) = (CapturedOutput::new(4096), CapturedOutput::new(4096));
    let mut builder = with_host_fns(PluginBuilder::new(manifest));
    if wasi {
        builder = builder.wasi_output(
            WasiOutput::Capture(stdout.clone()),
            WasiOutput::Capture(stderr.clone()),
        );
    }
    let plugin = builder
        .build(engine)
        .unwrap_or_else(|err| panic!("{file}: {err:?}"));
    Built {
        plugin,
        stdout,
        stderr,
    }
}

fn extism_error(err: &wasmtime::Error) -> &ExtismError {
    err.downcast_ref::<ExtismError>()
        .unwrap_or_else(|| panic!("not an ExtismError: {err:?}"))
}

fn plugin_error(err: &wasmtime::Error) -> (Option<&str>, i32) {
    match extism_error(err) {
        ExtismError::Plugin { message, code } => (message.as_deref(), *code),
        other => panic!("not a plugin error: {other:?}"),
    }
}

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

#[derive(Deserialize, Debug, PartialEq)]
struct Fetched {
    status: u16,
    body: String,
}

/// Everything a plugin does, on whatever executor runs it (with tokio's I/O and time at
/// hand for the host functions: async-executor's test enters a tokio runtime for them).
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
    assert!(format!("{err:#}").contains("host function `host_fail` failed"));
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
fn http_allowed_refused_and_too_large() {
    let port = http_server();
    let engine = engine();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (file, wasi) in PLUGINS {
            // Allowed: any status is a response.
            let Built { plugin, .. } = build(&engine, file, wasi, manifest(file));
            let get = |path: &str| {
                let plugin = plugin.clone();
                let url = format!("http://127.0.0.1:{port}{path}");
                async move { plugin.call::<_, Json<Fetched>>("http_get", url).await }
            };
            let out = get("/missing").await.unwrap().0;
            let expected = Fetched {
                status: 404,
                body: "not found".into(),
            };
            assert_eq!(out, expected, "{file}");

            // A host not allowed (`localhost` is not `127.0.0.1`): refused before sending.
            let url = format!("http://localhost:{port}/");
            let err = plugin
                .call::<_, Vec<u8>>("http_get", url.as_str())
                .await
                .unwrap_err();
            match err.downcast_ref::<HttpError>() {
                Some(HttpError::NotAllowed { url: refused }) => assert_eq!(*refused, url),
                _ => panic!("{file}: {err:?}"),
            }

            // No allowed hosts at all: every request is refused.
            let bare = Manifest::new([plugin_path(file)]);
            let Built { plugin: bare, .. } = build(&engine, file, wasi, bare);
            let url = format!("http://127.0.0.1:{port}/hello");
            let err = bare.call::<_, Vec<u8>>("http_get", url).await.unwrap_err();
            assert!(
                matches!(err.downcast_ref(), Some(HttpError::NotAllowed { .. })),
                "{file}: {err:?}"
            );

            // A response over `max_http_response_bytes`: typed twice, the limit on top.
            let small = manifest(file).with_max_http_response_bytes(1000);
            let Built { plugin: small, .. } = build(&engine, file, wasi, small);
            let ok = small
                .call::<_, Json<Fetched>>("http_get", format!("http://127.0.0.1:{port}/big/1000"))
                .await
                .unwrap();
            assert_eq!(ok.0.body.len(), 1000, "{file}");
            let err = small
                .call::<_, Vec<u8>>("http_get", format!("http://127.0.0.1:{port}/big/1001"))
                .await
                .unwrap_err();
            assert_eq!(
                extism_error(&err),
                &ExtismError::Limit {
                    limit: Limit::HttpResponse,
                    requested: 1001,
                    max: 1000
                },
                "{file}"
            );
            assert!(
                matches!(
                    err.downcast_ref(),
                    Some(HttpError::TooLarge { limit: 1000, .. })
                ),
                "{file}: {err:?}"
            );
            // And the next call works.
            let out: String = small.call("echo", "next").await.unwrap();
            assert_eq!(out, "next");
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

/// A plugin against the raw ABI: `headers` and `status` send the request their input is (the
/// JSON of Extism's `HttpRequest`), then output `http_headers()`'s block, or
/// `http_status_code()` as 8 bytes.
const HTTP_META: &str = r#"(module
    (import "extism:host/env" "input_offset" (func $input (result i64)))
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "length" (func $length (param i64) (result i64)))
    (import "extism:host/env" "store_u64" (func $store (param i64 i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (import "extism:host/env" "http_request" (func $http (param i64 i64) (result i64)))
    (import "extism:host/env" "http_status_code" (func $status (result i32)))
    (import "extism:host/env" "http_headers" (func $headers (result i64)))
    (func (export "headers") (result i32) (local $h i64)
        (drop (call $http (call $input) (i64.const 0)))
        (local.set $h (call $headers))
        (call $output_set (local.get $h) (call $length (local.get $h)))
        (i32.const 0))
    (func (export "status") (result i32) (local $out i64)
        (drop (call $http (call $input) (i64.const 0)))
        (local.set $out (call $alloc (i64.const 8)))
        (call $store (local.get $out) (i64.extend_i32_u (call $status)))
        (call $output_set (local.get $out) (i64.const 8))
        (i32.const 0)))"#;

#[test]
fn http_status_and_headers() {
    let port = http_server();
    let request = |path: &str| format!(r#"{{"url": "http://127.0.0.1:{port}{path}"}}"#);
    let manifest = Manifest::new([HTTP_META.as_bytes()]).with_allowed_host("127.0.0.1");
    let engine = engine();
    let keeping = PluginBuilder::new(manifest.clone())
        .http_response_headers(true)
        .build(&engine)
        .unwrap();
    let plain = PluginBuilder::new(manifest).build(&engine).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let status: u64 = keeping.call("status", request("/missing")).await.unwrap();
        assert_eq!(status, 404);
        let status: u64 = plain.call("status", request("/hello")).await.unwrap();
        assert_eq!(status, 200);

        // Headers as Extism gives them: a JSON object, names lowercase.
        let Json(headers): Json<BTreeMap<String, String>> =
            keeping.call("headers", request("/hello")).await.unwrap();
        assert_eq!(headers["x-served-by"], "loopback");
        assert_eq!(headers["content-length"], "17");
        // Not kept unless asked for: the null handle, so an empty output.
        let none: Vec<u8> = plain.call("headers", request("/hello")).await.unwrap();
        assert!(none.is_empty());
    });
}

/// A request gets what is left of the call's `timeout_ms`, not the client's default: a
/// server that never answers fails the call with `HttpError::TimedOut` within it.
#[test]
fn http_requests_get_the_calls_remaining_time() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts, reads nothing, answers nothing, until the test ends.
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let manifest = Manifest::new([HTTP_META.as_bytes()])
        .with_allowed_host("127.0.0.1")
        .with_timeout(Duration::from_millis(300));
    let engine = AsyncEngine::builder()
        .yield_every(Duration::from_millis(5))
        .build()
        .unwrap();
    let plugin = PluginBuilder::new(manifest).build(&engine).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let err = rt
        .block_on(plugin.call::<_, u64>("status", format!(r#"{{"url": "{url}"}}"#)))
        .unwrap_err();
    match err.downcast_ref::<HttpError>() {
        Some(HttpError::TimedOut { after, .. }) => {
            assert!(*after <= Duration::from_millis(300), "{after:?}")
        }
        _ => panic!("{err:?}"),
    }
}
