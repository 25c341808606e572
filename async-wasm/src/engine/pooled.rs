//! [`PooledStore`]: a store holding one of its engine's slots, and [`AcquireError`], why
//! none was had.

use core::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use wasmtime::{AsContext, AsContextMut, Store, StoreContext, StoreContextMut};

use super::slots::Permit;

/// A [`Store`] from [`AsyncEngine::acquire_store`](super::AsyncEngine::acquire_store),
/// holding one of the engine's [`max_stores`](super::AsyncEngineBuilder::max_stores)
/// slots until it is dropped; then the store is dropped first (which gives its instance,
/// memory and stacks back to the engine) and the slot goes to the oldest waiter.
///
/// It dereferences to the `Store<T>` and is [`AsContextMut`] itself, so it goes wherever a
/// store does: `pre.instantiate_async(&mut store)`, `func.call(&mut store, ..)`.
///
/// # Example
///
/// ```
/// # futures::executor::block_on(async {
/// let engine = async_wasm::AsyncEngine::builder().max_stores(1).build()?;
/// let mut store = engine.acquire_store(7_u32).await?;
/// *store.data_mut() += 1; // a Store<u32>
/// assert_eq!(*store.data(), 8);
/// drop(store); // the slot is free again
/// let again = engine.acquire_store(0_u32).await?;
/// # drop(again);
/// # wasmtime::Result::<()>::Ok(())
/// # })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub struct PooledStore<T: 'static> {
    // Declared before the permit: fields drop in order, and the slot must only go to the
    // next waiter once this store has given its instance and stacks back.
    store: Store<T>,
    _permit: Option<Permit>,
}

impl<T: 'static> PooledStore<T> {
    pub(crate) fn new(store: Store<T>, permit: Option<Permit>) -> PooledStore<T> {
        PooledStore {
            store,
            _permit: permit,
        }
    }
}

impl<T: 'static> Deref for PooledStore<T> {
    type Target = Store<T>;

    fn deref(&self) -> &Store<T> {
        &self.store
    }
}

impl<T: 'static> DerefMut for PooledStore<T> {
    fn deref_mut(&mut self) -> &mut Store<T> {
        &mut self.store
    }
}

impl<T: 'static> AsContext for PooledStore<T> {
    type Data = T;

    fn as_context(&self) -> StoreContext<'_, T> {
        self.store.as_context()
    }
}

impl<T: 'static> AsContextMut for PooledStore<T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        self.store.as_context_mut()
    }
}

impl<T: fmt::Debug + 'static> fmt::Debug for PooledStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why [`AsyncEngine::acquire_store`](super::AsyncEngine::acquire_store) gave no store: all
/// [`max_stores`](super::AsyncEngineBuilder::max_stores) slots were taken and the wait was
/// refused or took too long. Nothing was allocated; shed the request (an HTTP 503, say).
///
/// # Example
///
/// ```
/// use async_wasm::{AcquireError, AsyncEngine};
///
/// # futures::executor::block_on(async {
/// let engine = AsyncEngine::builder().max_stores(1).max_waiting(0).build()?;
/// let held = engine.acquire_store(()).await?;
/// match engine.acquire_store(()).await {
///     Err(AcquireError::QueueFull { max_waiting: 0 }) => {} // busy: shed the request
///     other => panic!("unexpected: {other:?}"),
/// }
/// # drop(held);
/// # wasmtime::Result::<()>::Ok(())
/// # })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcquireError {
    /// [`max_waiting`](super::AsyncEngineBuilder::max_waiting) acquisitions were already
    /// waiting.
    QueueFull {
        /// The bound that was reached.
        max_waiting: usize,
    },
    /// No slot came free within [`acquire_timeout`](super::AsyncEngineBuilder::acquire_timeout)
    /// (or the thread that ends overdue waits could not be started).
    TimedOut {
        /// The timeout.
        timeout: Duration,
    },
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::QueueFull { max_waiting } => {
                let requests = if *max_waiting == 1 {
                    "request"
                } else {
                    "requests"
                };
                write!(
                    f,
                    "every store slot of the AsyncEngine is taken and {max_waiting} {requests} \
                     already wait for one (max_waiting): shed this request, or raise \
                     max_stores or max_waiting"
                )
            }
            AcquireError::TimedOut { timeout } => write!(
                f,
                "no store slot of the AsyncEngine came free within {timeout:?} \
                 (acquire_timeout): shed this request, or raise max_stores or acquire_timeout"
            ),
        }
    }
}

impl std::error::Error for AcquireError {}
