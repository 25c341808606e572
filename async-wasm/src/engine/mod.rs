//! [`AsyncEngine`]: the recommended per-request configuration in one builder, so that no
//! step of it can be left out, and the stores to go with it.

mod builder;
mod deadline;
mod error;
mod headroom;
mod pooled;
mod slots;

use std::sync::Arc;

use wasmtime::{Engine, Store};

use crate::StackPool;
pub use builder::{Allocation, AsyncEngineBuilder};
pub use deadline::DeadlineExceeded;
use deadline::Policy;
pub use error::EngineError;
pub use headroom::MIN_HOST_STACK;
pub(crate) use headroom::{check as check_headroom, explain_failure as explain_headroom};
pub use pooled::{AcquireError, PooledStore};
use slots::Slots;

/// An engine set up for async guests, a store per request or per connection, as this
/// crate recommends: stacks and memories from a pool ([`Allocation`]), bounds, zeroing,
/// cooperative yields with a clock it owns, and a deadline that really stops a spinning
/// guest; and the stores to go with it.
///
/// Each step of that recipe done by hand can be done half: a [`StackPool`] never passed to
/// the config, a stack smaller than `max_wasm_stack`, epoch interruption without a clock (a
/// spinning guest then hangs its thread for good) or without a per-store deadline (the
/// first epoch check traps, in a reactor's `_initialize`). Here none can: stores come from
/// [`acquire_store`](AsyncEngine::acquire_store) (which waits for a free slot) or
/// [`store`](AsyncEngine::store), with their deadline set, and the clock runs as long as
/// the engine or any of its stores does. The raw pieces ([`StackPool`],
/// [`EpochTicker`](crate::EpochTicker)) stay available.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use async_wasm::prelude::*;
/// use async_wasm::{AsyncEngine, DeadlineExceeded};
/// use wasmtime::{Linker, Module};
///
/// # futures::executor::block_on(async {
/// let engine = AsyncEngine::builder()
///     .max_stores(100)
///     .yield_every(Duration::from_millis(1))
///     .timeout(Duration::from_millis(50))
///     .build()?;
/// let module = Module::new(engine.engine(), r#"(module
///     (func (export "spin") (loop $forever (br $forever))))"#)?;
/// let linker = Linker::new(engine.engine());
/// let pre = linker.instantiate_pre(&module)?;
///
/// // A store per request, waiting for one of the 100 slots if all are taken.
/// let mut store = engine.acquire_store(()).await?;
/// let instance = pre.instantiate_async(&mut store).await?;
/// let spin = instance.get_func(&mut store, "spin").unwrap();
/// let err = spin.get_async().get0::<()>(&store)?.call(&mut store).await.unwrap_err();
/// assert!(err.downcast_ref::<DeadlineExceeded>().is_some());
/// # wasmtime::Result::<()>::Ok(())
/// # })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Clone)]
pub struct AsyncEngine {
    engine: Engine,
    stack_pool: Option<StackPool>,
    policy: Option<Policy>,
    fuel: Option<u64>,
    /// `None` when nothing bounds the stores (`Allocation::StackPool` without `max_stores`).
    slots: Option<Arc<Slots>>,
}

impl AsyncEngine {
    /// Whether stores of this engine get epoch ticks (the engine was built with a
    /// `timeout` or `yield_every`), at which a deadline of the caller's can be checked.
    #[cfg(feature = "extism")]
    pub(crate) fn has_epoch_ticks(&self) -> bool {
        self.policy.is_some()
    }

    /// The [`timeout`](AsyncEngineBuilder::timeout) this engine gives its stores.
    #[cfg(feature = "extism")]
    pub(crate) fn timeout(&self) -> Option<std::time::Duration> {
        self.policy.as_ref().and_then(|policy| policy.timeout)
    }

    /// Starts building an engine.
    ///
    /// # Example
    ///
    /// See [`AsyncEngine`].
    pub fn builder() -> AsyncEngineBuilder {
        AsyncEngineBuilder::new()
    }

    /// The wasmtime engine, for modules, linkers and `InstancePre`s.
    ///
    /// Make its stores with [`acquire_store`](AsyncEngine::acquire_store) or
    /// [`store`](AsyncEngine::store), not `Store::new`: with a
    /// [`yield_every`](AsyncEngineBuilder::yield_every) or a
    /// [`timeout`](AsyncEngineBuilder::timeout), a store of `Store::new` has no deadline
    /// and its first call fails with `wasm trap: interrupt`
    /// ([`Trap::Interrupt`](wasmtime::Trap::Interrupt)); with [`fuel`](AsyncEngineBuilder::fuel)
    /// it has none, [`Trap::OutOfFuel`](wasmtime::Trap::OutOfFuel). A store that must come
    /// from elsewhere gets the deadline from [`restart_timeout`](AsyncEngine::restart_timeout).
    ///
    /// # Example
    ///
    /// See [`AsyncEngine`].
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A store of this engine, holding one of its [`max_stores`](AsyncEngineBuilder::max_stores)
    /// slots until dropped, with the engine's yield, deadline and fuel set; its
    /// [timeout](AsyncEngineBuilder::timeout) starts when it is returned.
    ///
    /// When every slot is taken, the future waits for one, first come first served: a slot
    /// goes to the oldest waiter as soon as a store is dropped. The wait is cancel-safe:
    /// dropping the future gives up its place, and a slot it was handed goes on to the next
    /// waiter. Nothing is allocated before the slot is had. With no bound on stores
    /// ([`Allocation::StackPool`] without `max_stores`) it never waits.
    ///
    /// # Errors
    ///
    /// [`AcquireError::QueueFull`] when [`max_waiting`](AsyncEngineBuilder::max_waiting)
    /// others already wait, [`AcquireError::TimedOut`] when no slot came free within
    /// [`acquire_timeout`](AsyncEngineBuilder::acquire_timeout) (30 s unless set). `data` is
    /// dropped.
    ///
    /// # Example
    ///
    /// See [`AsyncEngine`], [`PooledStore`] and [`AcquireError`].
    pub async fn acquire_store<T: 'static>(&self, data: T) -> Result<PooledStore<T>, AcquireError> {
        let permit = match &self.slots {
            Some(slots) => Some(slots.acquire().await?),
            None => None,
        };
        Ok(PooledStore::new(self.store(data), permit))
    }

    /// A store of this engine that does not wait and holds no slot, with the engine's
    /// yield, deadline and fuel set; its [timeout](AsyncEngineBuilder::timeout) starts
    /// now.
    ///
    /// At the bound of [`max_stores`](AsyncEngineBuilder::max_stores), the instantiation
    /// or call that needs one more instance or stack than the engine has fails with an
    /// error (wasmtime's [`PoolConcurrencyLimitError`](wasmtime::PoolConcurrencyLimitError),
    /// or [`StackPoolError::Exhausted`](crate::StackPoolError::Exhausted)): for a server
    /// that would rather shed than queue, or a store that lives as long as the program. To
    /// wait for a slot instead, use [`acquire_store`](AsyncEngine::acquire_store); do not
    /// mix the two for the requests of one engine, since stores from here take slots that
    /// `acquire_store` counts as free.
    ///
    /// # Example
    ///
    /// See [`AsyncEngineBuilder`].
    pub fn store<T>(&self, data: T) -> Store<T> {
        let mut store = Store::new(&self.engine, data);
        if let Some(policy) = &self.policy {
            policy.apply(&mut store);
        }
        if let Some(fuel) = self.fuel {
            // Cannot fail: the builder turned fuel on for this engine.
            let _ = store.set_fuel(fuel);
        }
        store
    }

    /// Starts the store's [timeout](AsyncEngineBuilder::timeout) again from now, for a
    /// store that serves more than one request (a connection's), and sets the engine's
    /// yield and deadline on a store that lacks them (one made with `Store::new` on
    /// [`engine`](AsyncEngine::engine)). Does nothing without a timeout or yields.
    ///
    /// # Errors
    ///
    /// [`EngineError::ForeignStore`] for a store of another engine; it is left as it was.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let engine = async_wasm::AsyncEngine::builder().timeout(Duration::from_secs(1)).build()?;
    /// let mut store = engine.store(());
    /// // ... one request ...
    /// engine.restart_timeout(&mut store)?;
    /// // ... the next, with a full second again ...
    ///
    /// let mut foreign = wasmtime::Store::new(&wasmtime::Engine::default(), ());
    /// assert!(engine.restart_timeout(&mut foreign).is_err());
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn restart_timeout<T>(&self, store: &mut Store<T>) -> Result<(), EngineError> {
        if !Engine::same(store.engine(), &self.engine) {
            return Err(EngineError::ForeignStore);
        }
        if let Some(policy) = &self.policy {
            policy.apply(store);
        }
        Ok(())
    }

    /// The pool the stacks come from, under [`Allocation::StackPool`]: its
    /// [`stats`](StackPool::stats) show the stacks in use.
    ///
    /// # Example
    ///
    /// See [`AsyncEngineBuilder::allocation`].
    pub fn stack_pool(&self) -> Option<&StackPool> {
        self.stack_pool.as_ref()
    }
}

impl core::fmt::Debug for AsyncEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncEngine")
            .field("stack_pool", &self.stack_pool)
            .field("yields", &self.policy.as_ref().map(|p| p.yields))
            .field("timeout", &self.policy.as_ref().and_then(|p| p.timeout))
            .field("fuel", &self.fuel)
            .finish_non_exhaustive()
    }
}
