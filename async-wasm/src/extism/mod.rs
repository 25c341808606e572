//! Unmodified Extism plugins, calling async Rust host functions (feature `extism`).
//!
//! An [Extism](https://extism.org) plugin is a core wasm module built with one of
//! Extism's PDKs (Rust, AssemblyScript, Go, JavaScript...): it imports the Extism kernel
//! and host services from `extism:host/env`, your host functions from `extism:host/user`,
//! and exports functions `() -> i32` that read an input and set an output. This module
//! runs such plugins as they are, with host functions that are plain `async fn`s:
//!
//! ```
//! use async_wasm::AsyncEngine;
//! use async_wasm::extism::{CompiledPlugin, Manifest};
//!
//! /// A host function: awaits whatever it likes (a database, a socket).
//! async fn kv_get(key: String) -> Result<String, std::io::Error> {
//!     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//!     Ok(format!("value of {key}"))
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> wasmtime::Result<()> {
//!     // What the Rust PDK's `#[host_fn] extern "ExtismHost" { fn kv_get(key: String) -> String; }`
//!     // and `#[plugin_fn] fn lookup(key: String) -> FnResult<String>` compile to, by hand.
//!     let wat = r#"(module
//!         (import "extism:host/user" "kv_get" (func $kv_get (param i64) (result i64)))
//!         (import "extism:host/env" "input_offset" (func $input (result i64)))
//!         (import "extism:host/env" "length" (func $length (param i64) (result i64)))
//!         (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
//!         (func (export "lookup") (result i32) (local $value i64)
//!             (local.set $value (call $kv_get (call $input)))
//!             (call $output_set (local.get $value) (call $length (local.get $value)))
//!             (i32.const 0)))"#;
//!     let manifest = Manifest::new([wat.as_bytes()]).with_config_key("region", "eu");
//!
//!     // Plugins are strangers' code: bound each call's time in wasm, and make a busy one
//!     // yield so that it cannot starve the tasks beside it (neither is on by default).
//!     let engine = AsyncEngine::builder()
//!         .timeout(std::time::Duration::from_secs(5))
//!         .yield_every(std::time::Duration::from_millis(1))
//!         .build()?;
//!     let plugin = CompiledPlugin::builder(manifest).host_fn("kv_get", kv_get).build(&engine)?;
//!
//!     // A fresh instance per call, many at once...
//!     let out: String = plugin.call("lookup", "a").await?;
//!     assert_eq!(out, "value of a");
//!     // ...or one long-lived instance whose calls keep their vars.
//!     let mut session = plugin.instantiate().await?;
//!     let out: String = session.call("lookup", "b").await?;
//!     assert_eq!(out, "value of b");
//!     Ok(())
//! }
//! ```
//!
//! # What is here
//!
//! - [`Manifest`]: the module, `config`, memory limits, `timeout_ms`, from Rust or
//!   Extism's JSON.
//! - [`PluginBuilder`]: host functions ([`HostFn`]: closures and `async fn`s over
//!   `String`, `Vec<u8>`, [`Json<T>`](crate::data::Json), numbers, optionally a
//!   [`HostContext`] first; [`LocalHostFn`] for `!Send` ones), WASI (feature `wasi`).
//! - [`CompiledPlugin`]: compiled and linked once; a fresh instance per call, as many
//!   calls in flight as the engine has room for.
//! - [`Plugin`]: one instance, calls in sequence, vars kept.
//! - [`ExtismError`]: every way a plugin's call fails, typed.
//!
//! # The kernel, on the host
//!
//! Extism memory (the blocks `alloc` hands out, input, output, error) lives on the host,
//! per instance, not in a second wasm module: the kernel's functions are synchronous host
//! imports. Every handle, address and length the plugin passes is checked against the
//! blocks it holds:
//!
//! | the plugin | Extism's kernel | here |
//! |---|---|---|
//! | `length`/`length_unsafe` of a handle that is not a block | 0 | 0 |
//! | `free` of a handle that is not a block | ignored | ignored |
//! | `alloc(0)` | 0 | 0 |
//! | `alloc` past the memory limit (`alloc(2^63)`) | 0 | [`ExtismError::Limit`] |
//! | a load or store not inside one block | reads or writes whatever is there (0 past memory) | [`Violation::OutsideBlock`] |
//! | `input_load_*` past the input | 0 | [`Violation::OutsideInput`] |
//! | `output_set`/`input_set` of a range not inside one block | taken if inside Extism memory, else ignored | [`Violation::RangeNotInBlock`] |
//! | `error_set` of a handle that is not a block | taken if inside Extism memory, else ignored | [`Violation::NotABlock`] |
//! | a var or config key that is not UTF-8 | the call fails | [`Violation::NotUtf8`] |
//! | a var past `max_var_bytes` | the call fails | [`ExtismError::Limit`] |
//! | a host function called with a made-up handle | the host function decides | [`Violation::NotABlock`] |
//! | no `output_set` | empty output | empty output |
//!
//! A refused operation fails the call with the error (the plugin does not resume); the
//! next call on a fresh instance, or the next call of a [`Plugin`], works. Extism memory
//! and the plugin's linear memory share one bound, `memory.max_pages`
//! ([`Manifest::DEFAULT_MAX_PAGES`] unless set), so a plugin cannot grow either without
//! bound; the host's bookkeeping of each Extism memory block (96 bytes) counts against it
//! with the block's bytes, so that many tiny blocks cannot make the host hold more. Each
//! call starts with empty Extism memory, as in Extism.
//!
//! # Errors as Extism reports them
//!
//! An export's non-zero return code, or an error message it set (the Rust PDK's
//! `Err(..)`, with `WithReturnCode` for the code), is [`ExtismError::Plugin`] with both.
//! A host function's `Err` ends the plugin's call with that error, as Extism's host does:
//! the plugin never sees it.
//!
//! # Host services
//!
//! `config_get` answers from the manifest's `config`; `var_get`/`var_set` keep bytes per
//! [`Plugin`] (a per-request instance starts without vars), bounded by
//! `memory.max_var_bytes`; `log_*` go to the [`tracing`](https://docs.rs/tracing) crate
//! with the plugin's id as the field `plugin`, and `get_log_level` answers tracing's
//! current maximum level.
//!
//! # HTTP
//!
//! With the feature `http`, `http_request` sends the plugin's request with an async
//! HTTP/1.1 client on tokio (the call must run on a tokio runtime with I/O and time
//! enabled), as Extism's host does: only to hosts the manifest's `allowed_hosts` match
//! (glob patterns, none by default), a response body of at most
//! `memory.max_http_response_bytes` (50 MiB by default), within what is left of the
//! call's `timeout_ms`; redirects are followed, each to an allowed host. `http_status_code`
//! answers the last response's status, `http_headers` its headers as JSON when built with
//! [`PluginBuilder::http_response_headers`]. A request that fails fails the plugin's call,
//! as under Extism, with an [`HttpError`] (a response over the limit is also
//! [`ExtismError::Limit`] with [`Limit::HttpResponse`]); a 4xx or 5xx status is a
//! response. `https` URLs need the feature `https`. Without `http`, `http_request` fails
//! the call with [`ExtismError::HttpNotEnabled`].
//!
//! # Time
//!
//! The engine's deadline and yields work as for any store of an
//! [`AsyncEngine`](crate::AsyncEngine). A manifest's `timeout_ms` replaces the engine's
//! timeout for each call of the plugin, and is checked at the engine's epoch ticks: build
//! the engine with [`timeout`](crate::AsyncEngineBuilder::timeout) or
//! [`yield_every`](crate::AsyncEngineBuilder::yield_every); on an engine without either,
//! [`PluginBuilder::build`] refuses such a manifest
//! ([`ManifestError::TimeoutNeedsTicks`]) rather than leave the timeout unenforced. A
//! call that times out fails with [`ExtismError::Timeout`]. An HTTP request gets what is
//! left of the call's `timeout_ms` (the deadline is not checked while the plugin waits in
//! a host function). Dropping a call's future cancels it.

mod convert;
mod error;
#[cfg(test)]
mod export_cache_tests;
mod host_fn;
#[cfg(feature = "http")]
mod http;
mod kernel;
mod manifest;
mod memory;
mod module_cache;
mod plugin;
mod services;
mod state;
#[cfg(feature = "wasi")]
mod wasi;

#[cfg(feature = "http")]
pub use crate::http_client::HttpError;
pub use convert::{FromExtism, ToExtism};
pub use error::{DataProblem, DataSite, ExtismError, Limit, Violation};
pub use host_fn::{HostContext, HostFn, HostResult, LocalHostFn, Plain, WithContext};
pub use manifest::{Manifest, ManifestError, MemoryOptions, Wasm};
pub use plugin::{CompiledPlugin, Plugin, PluginBuilder, USER_NAMESPACE};
#[cfg(feature = "wasi")]
pub use wasi::{CapturedOutput, WasiOutput};
