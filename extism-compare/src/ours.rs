//! async-wasm's Extism host (`async_wasm::extism`, wasmtime 48) on the same plugins, as its
//! user writes it: the contract's host functions as `async` closures, an `AsyncEngine` on
//! the pooling allocator, and the futures driven on the bench's thread.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use async_wasm::AsyncEngine;
use async_wasm::data::Json;
use async_wasm::extism::{CompiledPlugin, Manifest, PluginBuilder};

use crate::host::{self, Answer, Query};
use crate::plugins::PluginFile;

/// How `host_echo` and `lookup` answer: at once, after one pending poll (a future that
/// really suspends the plugin, with no timer behind it), or after a tokio timer.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    Ready,
    PendingOnce,
    Timer(Duration),
}

/// The engine the bench's plugins run on: `AsyncEngine`'s default, the pooling allocator,
/// with room for `max_stores` instances at once and 2 MiB of linear memory each (the Rust
/// plugin starts with 17 pages).
pub fn engine(max_stores: u32) -> AsyncEngine {
    AsyncEngine::builder()
        .max_stores(max_stores)
        .max_memory_size(2 << 20)
        .build()
        .expect("a pooling AsyncEngine")
}

/// [`engine`], with wasmtime's `PAGEMAP_SCAN` reset of returned memories and 2 MiB of each
/// kept resident (`AsyncEngineBuilder::pagemap_scan`): only the pages a request dirtied are
/// reset, so the Rust plugin's scattered pages are not refaulted every request.
pub fn engine_pagemap_scan(max_stores: u32) -> AsyncEngine {
    AsyncEngine::builder()
        .max_stores(max_stores)
        .max_memory_size(2 << 20)
        .memory_keep_resident(2 << 20)
        .pagemap_scan(true)
        .build()
        .expect("a pooling AsyncEngine with pagemap_scan")
}

/// The manifest both hosts get: the plugin, config `vowels`.
pub fn manifest(plugin: PluginFile) -> Manifest {
    Manifest::new([plugin.bytes()]).with_config_key("vowels", "aeiouAEIOU")
}

/// The contract's host functions (`host::functions` is Extism's), async: `host_echo` and
/// `lookup` wait as `wait` says, the key-value store is this compiled plugin's.
pub fn builder(plugin: PluginFile, wait: Wait) -> PluginBuilder {
    let store = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
    let get_store = Arc::clone(&store);
    PluginBuilder::new(manifest(plugin))
        .host_fn("host_echo", move |text: String| async move {
            wait_for(wait).await;
            text
        })
        .host_fn("lookup", move |Json(query): Json<Query>| async move {
            wait_for(wait).await;
            Json(Answer {
                value: host::lookup_value(&query.key),
            })
        })
        .host_fn("kv_set", move |key: String, value: String| {
            let store = Arc::clone(&store);
            async move {
                store.lock().unwrap().insert(key, value);
            }
        })
        .host_fn("kv_get", move |key: String| {
            let store = Arc::clone(&get_store);
            async move { store.lock().unwrap().get(&key).cloned().unwrap_or_default() }
        })
        .host_fn("add", |a: i64, b: i64| async move { a.wrapping_add(b) })
        .host_fn("host_fail", |text: String| async move {
            Err::<String, _>(std::io::Error::other(host::host_fail_message(&text)))
        })
}

/// `builder(..)` compiled for `engine`.
pub fn compile(engine: &AsyncEngine, plugin: PluginFile, wait: Wait) -> CompiledPlugin {
    builder(plugin, wait)
        .build(engine)
        .expect("the plugin compiles and links")
}

async fn wait_for(wait: Wait) {
    match wait {
        Wait::Ready => {}
        Wait::PendingOnce => PendingOnce(false).await,
        Wait::Timer(delay) => tokio::time::sleep(delay).await,
    }
}

/// Pending once (waking itself at once), then ready.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
}

/// Runs `future` to completion on this thread, parking it while the future waits: the
/// least an executor costs, so that the micro rounds measure the host, not a runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    })
}
