//! What the Extism plugin tests share: the plugins' files, the contract's host functions
//! (each awaiting real I/O: a loopback TCP echo, a tokio timer, an async lock), a loopback
//! HTTP server, a `tracing` subscriber that captures the plugins' logs, and one engine on
//! which each plugin is compiled once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_wasm::AsyncEngine;
use async_wasm::data::Json;
use async_wasm::extism::{
    CapturedOutput, CompiledPlugin, ExtismError, Manifest, PluginBuilder, WasiOutput,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        .host_fn("add", |a: i64, b: i64| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            a.wrapping_add(b)
        })
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
pub fn manifest(file: &str) -> Manifest {
    Manifest::new([plugin_path(file)])
        .with_config_key("color", "blue")
        .with_allowed_host("127.0.0.1")
}

pub struct Built {
    pub plugin: CompiledPlugin,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
}

pub fn build(engine: &AsyncEngine, file: &str, wasi: bool, manifest: Manifest) -> Built {
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

pub fn extism_error(err: &wasmtime::Error) -> &ExtismError {
    err.downcast_ref::<ExtismError>()
        .unwrap_or_else(|| panic!("not an ExtismError: {err:?}"))
}

pub fn plugin_error(err: &wasmtime::Error) -> (Option<&str>, i32) {
    match extism_error(err) {
        ExtismError::Plugin { message, code } => (message.as_deref(), *code),
        other => panic!("not a plugin error: {other:?}"),
    }
}

#[derive(Deserialize, Debug, PartialEq)]
pub struct Fetched {
    pub status: u16,
    pub body: String,
}
