//! What every benchmark shares: engines, the host future shapes, criterion's settings.
//!
//! Each `benches/*.rs` file is its own binary and uses only part of this module, hence the
//! `dead_code` allowance on the module declaration in each of them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_wasm::StackPool;
use criterion::Criterion;
use wasmtime::{Config, Engine};

/// Usable bytes of each pooled stack: above wasmtime's default `max_wasm_stack` (512 KiB),
/// which `Engine::new` requires, and half of wasmtime's default 2 MiB async stack.
pub const STACK_SIZE: usize = 1 << 20;

/// Criterion settings that keep the whole `cargo bench -p async-wasm` run to about three
/// minutes on a 2-core machine: the operations measured here take nanoseconds to
/// microseconds, so three seconds still collect hundreds of thousands of them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// An engine with wasmtime's defaults: every store that makes an async call maps a fresh
/// 2 MiB stack and unmaps it when dropped.
pub fn default_engine() -> Engine {
    Engine::default()
}

/// An engine whose async stacks come from `pool`, as `StackPool`'s users configure it.
pub fn pooled_engine(pool: &StackPool) -> Engine {
    pool.engine(&Config::new()).expect("a pooled engine")
}

/// Runs `future` to completion on the current thread. Every benchmark uses this one
/// executor, so raw wasmtime and async-wasm pay the same executor costs.
pub fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// A future that is pending once, waking itself, then ready: the cheapest host future that
/// really suspends the guest, without a timer or a runtime to wait on.
pub fn yield_once() -> YieldOnce {
    YieldOnce { yielded: false }
}

/// See [`yield_once`].
pub struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
