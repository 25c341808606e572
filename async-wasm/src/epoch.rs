//! [`EpochTicker`]: the clock that makes long-running guests yield to their executor.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

/// Advances an engine's epoch on a background thread at a fixed interval, so that guests in
/// long loops return to the executor instead of starving the tasks beside them.
///
/// A guest that never calls a pending host function never gives its thread back: on a
/// current-thread runtime, every other task waits for it. wasmtime's epoch interruption
/// checks a counter at every function entry and loop back-edge; with
/// [`Store::epoch_deadline_async_yield_and_update`](wasmtime::Store::epoch_deadline_async_yield_and_update)
/// a guest past its deadline suspends (`Poll::Pending`, woken at once) and resumes on the
/// executor's next turn. This type is the clock those deadlines are measured in. Three lines
/// turn it on: one on the config, one per engine, one per store:
///
/// ```
/// use async_wasm::EpochTicker;
/// use std::time::Duration;
/// use wasmtime::{Config, Engine, Store};
///
/// let mut config = Config::new();
/// config.epoch_interruption(true);
/// let engine = Engine::new(&config)?;
/// let _ticker = EpochTicker::start(&engine, Duration::from_millis(1))?; // per engine
///
/// let mut store = Store::new(&engine, ());
/// store.epoch_deadline_async_yield_and_update(1); // per store: yield every tick
/// # wasmtime::Result::<()>::Ok(())
/// ```
///
/// With epoch interruption on, every store needs a deadline: one left at its default traps
/// at the first check.
///
/// Cost: the checks are a load and a compare at each loop back-edge and function entry
/// (wasmtime documents them as a few percent of a compute-bound guest); each yield is one
/// fiber suspend and resume plus an executor turn, once per interval per running guest. The
/// thread wakes once per interval; 1 ms keeps the latency of sibling tasks near 1 ms.
///
/// Dropping the ticker stops and joins its thread; it holds a clone of the engine until
/// then. Keep it alive as long as guests run: `let _ticker = ..` (not `let _ = ..`, which
/// drops it at once).
#[must_use = "an EpochTicker stops when dropped, and guests then never yield: keep it in a \
              variable (`let _ticker = ..`) for as long as guests run"]
pub struct EpochTicker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts a thread that calls [`Engine::increment_epoch`] every `interval`.
    ///
    /// # Errors
    ///
    /// When `interval` is zero (the thread would spin), or the thread cannot be spawned.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::EpochTicker;
    /// use std::time::Duration;
    ///
    /// let engine = wasmtime::Engine::default();
    /// let ticker = EpochTicker::start(&engine, Duration::from_millis(5))?;
    /// drop(ticker); // stops the thread
    /// assert!(EpochTicker::start(&engine, Duration::ZERO).is_err());
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    #[must_use = "the ticker stops when dropped: keep it (`let _ticker = ..`) while guests run"]
    pub fn start(engine: &Engine, interval: Duration) -> wasmtime::Result<EpochTicker> {
        if interval.is_zero() {
            wasmtime::bail!("an EpochTicker needs an interval above zero");
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (engine, thread_stop) = (engine.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("async-wasm-epoch".into())
            .spawn(move || tick(&engine, interval, &thread_stop))
            .map_err(|err| wasmtime::format_err!("failed to start the epoch thread: {err}"))?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

/// The ticker thread: increments the epoch every `interval` until told to stop. Waiting on
/// the condition variable, not sleeping, lets `drop` stop it at once.
fn tick(engine: &Engine, interval: Duration, stop: &(Mutex<bool>, Condvar)) {
    let (stopped, wake) = stop;
    let mut stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    while !*stopped {
        let (guard, timeout) = wake
            .wait_timeout(stopped, interval)
            .unwrap_or_else(PoisonError::into_inner);
        stopped = guard;
        if timeout.timed_out() {
            engine.increment_epoch();
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // The thread only loops on a condvar; it cannot panic, so the result is Ok.
            let _ = thread.join();
        }
    }
}

impl core::fmt::Debug for EpochTicker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EpochTicker").finish_non_exhaustive()
    }
}
