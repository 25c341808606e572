//! What each store made by an [`AsyncEngine`](super::AsyncEngine) does when the epoch
//! ticks: yield to the executor, stop a guest past its deadline, or both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use crate::EpochTicker;

/// The error a call ends with when its store's time is up: the guest was interrupted where
/// it was running (not waited for), and the call returned this.
///
/// The deadline is checked at every epoch tick while wasm runs, so a spinning guest stops
/// within one tick of it; time spent awaiting host futures counts too, and is noticed when
/// the guest next runs. Like any trap, it leaves the instance's own state where the guest
/// was: make a new instance rather than calling that one again.
///
/// # Example
///
/// ```
/// use async_wasm::DeadlineExceeded;
///
/// fn timed_out(err: &wasmtime::Error) -> bool {
///     err.downcast_ref::<DeadlineExceeded>().is_some()
/// }
/// # assert!(!timed_out(&wasmtime::format_err!("other")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineExceeded {
    timeout: Duration,
}

impl DeadlineExceeded {
    /// The error for a store given `timeout`, where a deadline of the engine's is enforced
    /// by a callback of the crate's own (an Extism plugin's `timeout_ms`).
    #[cfg(feature = "extism")]
    pub(crate) fn new(timeout: Duration) -> DeadlineExceeded {
        DeadlineExceeded { timeout }
    }

    /// The time the store was given.
    ///
    /// # Example
    ///
    /// See [`DeadlineExceeded`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl core::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the guest ran past its deadline ({:?} after its store's timeout started) and \
             was interrupted",
            self.timeout
        )
    }
}

impl std::error::Error for DeadlineExceeded {}

/// The epoch policy every store of one engine gets.
#[derive(Clone)]
pub(crate) struct Policy {
    /// Yield to the executor at every tick.
    pub yields: bool,
    /// Stop the guest this long after the timeout starts.
    pub timeout: Option<Duration>,
    /// Keeps the clock running while any store (or the engine) needs it.
    pub ticker: Arc<EpochTicker>,
}

impl Policy {
    /// Installs the policy on `store`, the timeout (if any) starting now. A store's first
    /// deadline is one tick away, so no store of an epoch engine starts with the default,
    /// already-passed deadline (which traps at once, in `_initialize` say).
    pub fn apply<T>(&self, store: &mut Store<T>) {
        let deadline = self
            .timeout
            .map(|timeout| (Instant::now() + timeout, timeout));
        let (yields, ticker) = (self.yields, Arc::clone(&self.ticker));
        store.epoch_deadline_callback(move |_| {
            // The callback owns a handle on the ticker: the clock runs while this store
            // lives, even after the engine handle is dropped.
            let _ = &ticker;
            if let Some((deadline, timeout)) = deadline
                && Instant::now() >= deadline
            {
                return Err(DeadlineExceeded { timeout }.into());
            }
            Ok(if yields {
                UpdateDeadline::Yield(1)
            } else {
                UpdateDeadline::Continue(1)
            })
        });
        store.set_epoch_deadline(1);
    }
}
