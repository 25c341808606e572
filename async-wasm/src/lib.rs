//! Call async Rust functions from WebAssembly running in [wasmtime], without a thread per
//! guest.
//!
//! The guest runs on its own stack. When it calls an async host function whose future is
//! not ready, its stack is suspended and the task awaiting the call sees `Poll::Pending`;
//! when the future is woken, the guest resumes where it stopped. The guest needs no async
//! support of its own.
//!
//! ```
//! use async_wasm::prelude::*;
//! use wasmtime::{Caller, Config, Engine, Linker, Module, Store};
//!
//! #[async_host]
//! async fn sleep_then_double(caller: Caller<'_, u32>, x: i32) -> i32 {
//!     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//!     x * 2 + *caller.data() as i32
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> wasmtime::Result<()> {
//!     let pool = StackPool::new(1 << 20);
//!     let mut config = Config::new();
//!     pool.configure(&mut config)?;
//!     let engine = Engine::new(&config)?;
//!
//!     let mut linker = Linker::new(&engine);
//!     linker.func_wrap_async1("env", "double", sleep_then_double)?;
//!     let module = Module::new(&engine, r#"(module
//!         (import "env" "double" (func $double (param i32) (result i32)))
//!         (func (export "run") (param i32) (result i32)
//!             (call $double (call $double (local.get 0)))))"#)?;
//!
//!     let mut store = Store::new(&engine, 1);
//!     let instance = linker.instantiate_async(&mut store, &module).await?;
//!     let run = instance.get_func(&mut store, "run").unwrap();
//!     let run = run.get_async().get1::<i32, i32>(&store)?;
//!     assert_eq!(run.call(&mut store, 5).await?, 23);
//!     Ok(())
//! }
//! ```
//!
//! # What is here
//!
//! - [`FuncExt`] on [`wasmtime::Func`]: [`wrap_async0`](FuncExt::wrap_async0) ..
//!   [`wrap_async15`](FuncExt::wrap_async15) (a [`Caller`](wasmtime::Caller) first),
//!   [`wrap_async`](FuncExt::wrap_async) (no caller, any arity),
//!   [`new_async`](FuncExt::new_async), [`call_async`](FuncExt::call_async) and
//!   [`get_async`](FuncExt::get_async), which gives typed calls through [`AsyncGetter`].
//! - [`LinkerExt`] on [`wasmtime::Linker`]: `func_wrap_async0..=15`.
//! - [`macro@async_host`]: plain `async fn`s become host functions those accept as they are.
//! - [`Stack`] and [`StackPool`]: the stacks guests run on, pooled so that a store per
//!   request does not map and unmap a stack each time, and bounded with
//!   [`StackPool::max_stacks`].
//! - [`EpochTicker`]: makes guests in long loops yield to the executor.
//!
//! wasmtime 48 has inherent `Func::wrap_async`, `Func::new_async` and `Func::call_async`,
//! which win method resolution; this crate's versions of those three are called through the
//! trait: `FuncExt::wrap_async(&mut store, f)`. See [`FuncExt`].
//!
//! # How it runs
//!
//! Suspension goes through wasmtime's own fibers (`call_async` and friends): wasmtime saves
//! and restores its per-thread trap state on every switch, so calls may interleave on one
//! thread and futures may move between threads (work stealing) with traps and host errors
//! still unwinding the right stack. This crate never switches stacks itself.

#![deny(missing_docs)]

mod epoch;
mod func_ext;
mod getter;
mod host_future;
mod into_async_func;
mod linker_ext;
mod pool;
mod stack;

pub use async_wasm_macros::async_host;
pub use epoch::EpochTicker;
pub use func_ext::FuncExt;
pub use getter::{AsyncGetter, AsyncTypedFunc};
pub use host_future::HostFuture;
pub use into_async_func::IntoAsyncFunc;
pub use linker_ext::LinkerExt;
pub use pool::{StackPool, StackPoolBuilder, StackPoolError, StackPoolStats};
pub use stack::Stack;

// The README's examples run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The names most programs need: `use async_wasm::prelude::*;`.
///
/// # Example
///
/// ```
/// use async_wasm::prelude::*;
///
/// # #[cfg(unix)] {
/// let pool = StackPool::new(1 << 20);
/// let mut config = wasmtime::Config::new();
/// pool.configure(&mut config)?;
/// # let _ = config;
/// # }
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub mod prelude {
    pub use crate::{FuncExt, LinkerExt, Stack, StackPool, async_host};
}
