//! Helpers shared by the integration tests in `tests/tests/`: engines, guests written in
//! WAT, and futures that are pending a given number of times.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use async_wasm::StackPool;
use wasmtime::{Config, Engine};

/// An engine whose async stacks come from `pool`.
pub fn pooled_engine(pool: &StackPool) -> Engine {
    pool.engine(&Config::new()).expect("a pooled engine")
}

/// A future that is pending `times` times, waking itself each time, then ready. Unlike a
/// timer it needs no runtime, so it runs on every executor.
pub fn pending(times: usize) -> Pending {
    Pending { left: times }
}

/// See [`pending`].
pub struct Pending {
    left: usize,
}

impl Future for Pending {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Counts how often it is dropped: put one in a host future to see its destructors run.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    /// A guard that adds one to the count when dropped.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    /// How many guards were dropped.
    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// See [`DropCounter`].
pub struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `fut` to completion with a waker that does nothing, counting the `Pending`s: how
/// many times the task awaiting it would have been suspended. Only for futures that wake
/// themselves, such as [`pending`].
pub fn poll_counting<F: Future>(fut: F) -> (F::Output, usize) {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut pendings = 0;
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return (out, pendings),
            Poll::Pending => pendings += 1,
        }
    }
}

/// Polls `fut` once, with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(std::task::Waker::noop()))
}

/// A module importing `env.host` with the given wasm parameter types and an `i64` result,
/// and exporting `run` with the same parameters, which forwards them to `host`.
pub fn forwarding_guest(params: &[&str]) -> String {
    let list = params.join(" ");
    let gets: String = (0..params.len())
        .map(|i| format!("(local.get {i}) "))
        .collect();
    format!(
        r#"(module
            (import "env" "host" (func $host (param {list}) (result i64)))
            (func (export "run") (param {list}) (result i64) (call $host {gets})))"#
    )
}

/// A wasm number that the arity tests pass and weigh; every `WasmTy` number type is one.
pub trait Num: Copy {
    /// The value `n` as this type.
    fn from_i64(n: i64) -> Self;
    /// This value as an `i64`.
    fn to_i64(self) -> i64;
    /// Its wasm name, for WAT.
    const WASM: &'static str;
}

macro_rules! num {
    ($($t:ty => $wasm:literal),*) => {$(
        impl Num for $t {
            fn from_i64(n: i64) -> Self { n as $t }
            fn to_i64(self) -> i64 { self as i64 }
            const WASM: &'static str = $wasm;
        }
    )*};
}
num!(i32 => "i32", i64 => "i64", f32 => "f32", f64 => "f64");

/// The checksum the arity tests' host functions compute: each argument weighed by its
/// position, so a swapped or dropped argument changes it.
pub fn weigh(args: &[i64]) -> i64 {
    args.iter()
        .enumerate()
        .map(|(i, a)| (i as i64 + 1) * a)
        .sum()
}

/// The C guests of `guests/src/`, as `guests/build.sh` built them (committed, so that the
/// tests need no C toolchain).
pub mod c_guests {
    /// `guests/src/data_guest.c`: strings, bytes and JSON through `env` imports.
    pub const DATA_GUEST: &[u8] = include_bytes!("../../guests/data_guest.wasm");
    /// `guests/src/wasi_guest.c`: printf and a clock through WASI, and an async import.
    pub const WASI_GUEST: &[u8] = include_bytes!("../../guests/wasi_guest.wasm");
}

/// Instantiates a C reactor and runs its `_initialize` export, which must come before any
/// other export.
pub async fn instantiate_reactor<T: Send>(
    store: &mut wasmtime::Store<T>,
    linker: &wasmtime::Linker<T>,
    module: &wasmtime::Module,
) -> wasmtime::Result<wasmtime::Instance> {
    use async_wasm::FuncExt;
    let instance = linker.instantiate_async(&mut *store, module).await?;
    let init = instance
        .get_func(&mut *store, "_initialize")
        .ok_or_else(|| wasmtime::format_err!("not a reactor: no `_initialize` export"))?;
    init.get_async()
        .get0::<()>(&*store)?
        .call(&mut *store)
        .await?;
    Ok(instance)
}
