//! Call async Rust functions from WebAssembly running in [wasmtime](https://wasmtime.dev),
//! without a thread per guest, with strings, bytes and JSON as well as numbers.
//!
//! ```
//! use async_wasm::prelude::*;
//! use wasmtime::{Caller, Linker, Module};
//!
//! /// An async host function: a string from the guest's memory in, a string back.
//! #[async_host]
//! async fn greet(caller: Caller<'_, u32>, name: String) -> String {
//!     tokio::time::sleep(std::time::Duration::from_millis(1)).await; // a database, say
//!     format!("hello {name}, visitor #{}", caller.data())
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> wasmtime::Result<()> {
//!     // Instances, memories and stacks pooled, for a store per request.
//!     let engine = AsyncEngine::builder().build()?;
//!     let mut linker = Linker::new(engine.engine());
//!     linker.func_wrap_host("env", "greet", greet)?;
//!     let module = Module::new(engine.engine(), r#"(module
//!         (import "env" "greet" (func $greet (param i32 i32) (result i64)))
//!         (memory (export "memory") 1)
//!         (data (i32.const 0) "wasm")
//!         (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
//!         (func (export "run") (result i32) ;; the length of the greeting it got back
//!             (i32.wrap_i64 (i64.shr_u (call $greet (i32.const 0) (i32.const 4)) (i64.const 32)))))"#)?;
//!     let pre = linker.instantiate_pre(&module)?;
//!
//!     let mut store = engine.store(7); // one per request
//!     let instance = pre.instantiate_async(&mut store).await?;
//!     let run = instance.get_func(&mut store, "run").unwrap();
//!     let run = run.get_async().get0::<i32>(&store)?;
//!     assert_eq!(run.call(&mut store).await?, "hello wasm, visitor #7".len() as i32);
//!     Ok(())
//! }
//! ```
//!
//! The guest runs on its own stack. When it calls an async host function whose future is
//! not ready, its stack is suspended and the task awaiting the call sees `Poll::Pending`;
//! when the future is woken, the guest resumes where it stopped. The guest needs no async
//! support of its own.
//!
//! # What is here
//!
//! - [`macro@async_host`]: plain `async fn`s become host functions, with numbers or with
//!   data ([`data`]: `String`, `Vec<u8>`, `Json<T>` through the guest's memory, and the
//!   guest's side of it, with a C header).
//! - [`LinkerExt`] on [`wasmtime::Linker`]: [`func_wrap_host`](LinkerExt::func_wrap_host)
//!   for any async host function, and `func_wrap_async0..=15` for a `Caller` and N wasm
//!   parameters.
//! - [`FuncExt`] on [`wasmtime::Func`]:
//!   [`wrap_async0`](FuncExt::wrap_async0) .. [`wrap_async15`](FuncExt::wrap_async15),
//!   [`wrap_async`](FuncExt::wrap_async), [`new_async`](FuncExt::new_async),
//!   [`call_async`](FuncExt::call_async) and [`get_async`](FuncExt::get_async), which gives
//!   typed calls through [`AsyncGetter`]. wasmtime 48 has inherent `Func::wrap_async`,
//!   `Func::new_async` and `Func::call_async`, which win method resolution: call this
//!   crate's through the trait, `FuncExt::wrap_async(&mut store, f)`.
//! - [`Stack`] and [`StackPool`]: the stacks guests run on, pooled so that a store per
//!   request does not map and unmap a stack each time.
//! - [`AsyncEngine`]: the recommended per-request setup in one builder: stacks and
//!   memories from a pool, bounds, cooperative yields and a deadline that stops a spinning
//!   guest; [`acquire_store`](AsyncEngine::acquire_store) waits for a free store slot.
//! - [`EpochTicker`]: makes guests in long loops yield to the executor.
//! - [`Local`] and [`LocalFuture`]: `!Send` store data and host futures for single-threaded
//!   hosts, checked instead of promised.
//! - `extism` (feature `extism`): unmodified Extism plugins, built with Extism's PDKs,
//!   calling async host functions; a plugin per request or long-lived, with Extism's
//!   manifest, HTTP (feature `http`), WASI (feature `wasi`) and logs through `tracing`.
//!
//! # How it runs
//!
//! Suspension goes through wasmtime's own fibers (`call_async` and friends): wasmtime saves
//! and restores its per-thread trap state on every switch, so calls may interleave on one
//! thread and futures may move between threads (work stealing) with traps and host errors
//! still unwinding the right stack. This crate never switches stacks itself.
//!
//! # Cancellation
//!
//! Dropping a call future while its guest waits in an async host function (a
//! `tokio::time::timeout`, a `select!`) cancels the call: wasmtime drops the host
//! function's future at its `.await` and the store stays usable. Host state kept in the
//! store across that `.await` is then as the host function left it: see
//! [`#[async_host]`](macro@async_host#cancellation) for the patterns that keep it
//! consistent.
//!
//! # Traps and guests
//!
//! A trap ends the call with an error that downcasts to [`wasmtime::Trap`]. What a guest's
//! endless recursion is depends on the guest: frames kept on wasm's own stack (WAT, and
//! compiled functions whose locals never have their address taken) overflow it,
//! `Trap::StackOverflow`; C compiled by clang (and Rust, for locals whose address is taken)
//! keeps a shadow stack in linear memory below a global stack pointer, which can run out
//! first, `Trap::MemoryOutOfBounds`. After a trap the instance's own state
//! (globals such as that stack pointer, its allocator's heap) is wherever the trap left
//! it: do not call into an instance that trapped again; make a new one.
//!
//! # Platforms
//!
//! Everything but custom stacks works wherever wasmtime 48's async support does: the
//! extension traits, `#[async_host]`, data, [`Local`], [`AsyncEngine`] with
//! [`Allocation::Pooling`] (wasmtime's own pooled stacks) and [`EpochTicker`].
//!
//! [`Stack`] and [`StackPool`] need a unix target: tested on Linux x86_64, type-checked in
//! CI for macOS on Apple silicon (16 KiB pages). On Windows and other targets wasmtime runs
//! async calls only on stacks it maps itself (its fiber crate refuses custom stacks there),
//! so [`StackPool::configure`], [`StackPool::engine`], [`Stack::new`] and
//! [`AsyncEngine`] with [`Allocation::StackPool`] return
//! [`StackPoolError::Unsupported`] and no stack of ours is ever mapped: use
//! [`Allocation::Pooling`] there.

#![deny(missing_docs)]

#[cfg(all(test, unix))]
mod child_test;
pub mod data;
mod engine;
mod epoch;
#[cfg(feature = "extism")]
pub mod extism;
mod func_ext;
mod getter;
mod host_func;
mod host_future;
#[cfg(feature = "http")]
mod http_client;
mod into_async_func;
mod linker_ext;
mod local;
mod pool;
mod stack;

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;

pub use async_wasm_macros::async_host;
pub use engine::{
    AcquireError, Allocation, AsyncEngine, AsyncEngineBuilder, DeadlineExceeded, EngineError,
    MIN_HOST_STACK, PooledStore,
};
pub use epoch::EpochTicker;
pub use func_ext::FuncExt;
pub use getter::{AsyncGetter, AsyncTypedFunc};
pub use host_func::IntoHostFunc;
pub use host_future::HostFuture;
pub use into_async_func::IntoAsyncFunc;
pub use linker_ext::LinkerExt;
pub use local::{Local, LocalFuture};
pub use pool::{StackPool, StackPoolBuilder, StackPoolStats};
pub use stack::{Stack, StackPoolError};

// The README's examples run as doctests too. Its Extism section needs the `extism`
// feature, which `cargo test --workspace` turns on (the tests package asks for it).
#[cfg(all(doctest, feature = "extism"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

// So do those of `#[async_host]`'s documentation, which lives in the macro crate.
#[cfg(doctest)]
#[doc = include_str!("../../async-wasm-macros/src/async_host.md")]
struct AsyncHostDoctests;

/// The names most programs need: `use async_wasm::prelude::*;`.
///
/// The extension traits (for their methods), the attribute, the engine builder, the pool
/// and the epoch clock. [`Stack`] is not here: a pool makes its own stacks.
///
/// # Example
///
/// ```
/// use async_wasm::prelude::*;
///
/// let engine = AsyncEngine::builder().max_stores(10).build()?;
/// # let _ = engine;
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub mod prelude {
    pub use crate::{AsyncEngine, EpochTicker, FuncExt, LinkerExt, StackPool, async_host};
}
