//! [`AsyncEngine`]: the recommended per-request configuration in one builder, so that no
//! step of it can be left out.

mod deadline;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::{EpochTicker, StackPool};
pub use deadline::DeadlineExceeded;
use deadline::Policy;

/// Where an [`AsyncEngine`]'s instances, memories and stacks come from.
///
/// The [README's table](https://github.com/async-wasm/async-wasm#i-make-a-store-per-request-what-do-i-configure)
/// says which is fastest for which guests, with the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Allocation {
    /// wasmtime's pooling instance allocator: instances, linear memories, tables and async
    /// stacks in slots reserved when the engine is made, reused from store to store
    /// (memories reset by copy-on-write, no `mmap` per request). The fastest for guests
    /// with a memory. Bounded: at most [`max_stores`](AsyncEngineBuilder::max_stores)
    /// stores with an instance at once, each memory at most
    /// [`max_memory_size`](AsyncEngineBuilder::max_memory_size), and the address space for
    /// all of it is reserved up front.
    Pooling,
    /// wasmtime's on-demand allocator (a fresh `mmap` per memory) with stacks from a
    /// [`StackPool`]. For guests without a memory, unbounded concurrency
    /// ([`max_stores`](AsyncEngineBuilder::max_stores) is then a bound on stacks, which you
    /// may leave unset), or little address space.
    StackPool,
}

/// Builds an [`AsyncEngine`]: see there for what it sets up.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use async_wasm::{AsyncEngine, Allocation};
///
/// let engine = AsyncEngine::builder()
///     .allocation(Allocation::Pooling)
///     .max_stores(100)
///     .max_memory_size(1 << 20)
///     .yield_every(Duration::from_millis(1))
///     .timeout(Duration::from_secs(2))
///     .build()?;
/// let store = engine.store(());
/// # drop(store);
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct AsyncEngineBuilder {
    config: Config,
    allocation: Allocation,
    max_stores: Option<u32>,
    max_memory_size: Option<usize>,
    stack_size: usize,
    zeroed_stacks: bool,
    memory_keep_resident: usize,
    yield_every: Option<Duration>,
    timeout: Option<Duration>,
    max_data_len: Option<u32>,
}

impl core::fmt::Debug for AsyncEngineBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncEngineBuilder")
            .field("allocation", &self.allocation)
            .field("max_stores", &self.max_stores)
            .field("max_memory_size", &self.max_memory_size)
            .field("stack_size", &self.stack_size)
            .field("zeroed_stacks", &self.zeroed_stacks)
            .field("memory_keep_resident", &self.memory_keep_resident)
            .field("yield_every", &self.yield_every)
            .field("timeout", &self.timeout)
            .field("max_data_len", &self.max_data_len)
            .finish_non_exhaustive()
    }
}

/// Stores with an instance at once under [`Allocation::Pooling`] unless set: wasmtime's
/// own default for its pool.
const DEFAULT_POOLING_STORES: u32 = 1_000;

impl AsyncEngineBuilder {
    fn new() -> AsyncEngineBuilder {
        AsyncEngineBuilder {
            config: Config::new(),
            allocation: Allocation::Pooling,
            max_stores: None,
            max_memory_size: None,
            stack_size: 1 << 20,
            zeroed_stacks: false,
            memory_keep_resident: 4 << 10,
            yield_every: None,
            timeout: None,
            max_data_len: None,
        }
    }

    /// Starts from `config` (wasm features, compiler settings, fuel...) instead of
    /// `Config::new()`. The builder then sets what it is responsible for: the allocation
    /// strategy, the async stack size and zeroing, epoch interruption, and the stack
    /// creator; do not set those in `config`.
    ///
    /// # Example
    ///
    /// ```
    /// let mut config = wasmtime::Config::new();
    /// config.wasm_simd(true);
    /// let engine = async_wasm::AsyncEngine::builder().config(config).build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Where instances, memories and stacks come from; [`Allocation::Pooling`] unless set.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{Allocation, AsyncEngine};
    /// let engine = AsyncEngine::builder().allocation(Allocation::StackPool).build()?;
    /// assert!(engine.stack_pool().is_some());
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// At most `n` stores making async calls (or, under [`Allocation::Pooling`], holding
    /// an instance) at once. Past it, the instantiation or call that needed one more fails
    /// with an error ([`StackPoolError`](crate::StackPoolError) or wasmtime's
    /// [`PoolConcurrencyLimitError`](wasmtime::PoolConcurrencyLimitError)), and every other
    /// store goes on. Under `Pooling` the default is 1,000 and the slots for all `n` are
    /// reserved up front; under `StackPool` the default is no bound, where the operating
    /// system's limits decide.
    ///
    /// Each store gets two stacks' worth of the bound: a store whose host function has
    /// handed data to the guest holds a second stack until its call ends (see
    /// [`data`](crate::data#why-an-exported-allocator)).
    ///
    /// # Example
    ///
    /// ```
    /// let engine = async_wasm::AsyncEngine::builder().max_stores(64).build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn max_stores(mut self, n: u32) -> Self {
        self.max_stores = Some(n);
        self
    }

    /// The largest a guest's linear memory may grow, in bytes, under
    /// [`Allocation::Pooling`]: a guest that grows past it gets `-1` from `memory.grow`, as
    /// from any limit. Unless set, wasmtime's default (4 GiB). (Under
    /// [`Allocation::StackPool`], `build` refuses it: limit memories per store with a
    /// [`ResourceLimiter`](wasmtime::ResourceLimiter).)
    ///
    /// It does not shrink the address space the pool reserves: each memory slot is
    /// [`Config::memory_reservation`](wasmtime::Config::memory_reservation) (4 GiB by
    /// default, so that wasm needs no bounds checks) plus its guard, for each of
    /// [`max_stores`](AsyncEngineBuilder::max_stores). Where address space is tight, set
    /// the reservation to this size in the [`config`](AsyncEngineBuilder::config): wasm
    /// then checks bounds explicitly, which the README measures.
    ///
    /// # Example
    ///
    /// ```
    /// // About 1 GiB of address space for 1,000 guests of up to 1 MiB, instead of 4 TiB.
    /// let mut config = wasmtime::Config::new();
    /// config.memory_reservation(1 << 20).memory_guard_size(64 << 10);
    /// let engine = async_wasm::AsyncEngine::builder()
    ///     .config(config)
    ///     .max_stores(1_000)
    ///     .max_memory_size(1 << 20)
    ///     .build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn max_memory_size(mut self, bytes: usize) -> Self {
        self.max_memory_size = Some(bytes);
        self
    }

    /// The usable bytes of each async stack: wasm gets
    /// [`Config::max_wasm_stack`](wasmtime::Config::max_wasm_stack) of it (512 KiB unless
    /// set in [`config`](AsyncEngineBuilder::config)) and host functions the rest. 1 MiB
    /// unless set.
    ///
    /// # Example
    ///
    /// ```
    /// let mut config = wasmtime::Config::new();
    /// config.max_wasm_stack(128 << 10);
    /// let engine = async_wasm::AsyncEngine::builder()
    ///     .config(config)
    ///     .stack_size(256 << 10)
    ///     .build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Whether a store's stack is zeroed before the store first runs on it. Off by default,
    /// as in wasmtime: without it, a stack reused from a previous store still holds that
    /// store's host frames (which wasm cannot read, since it has no access to the native
    /// stack). Turn it on in a multi-tenant host where host code handles secrets on the
    /// stack and a bug in host code could read uninitialized stack memory.
    ///
    /// # Example
    ///
    /// ```
    /// let engine = async_wasm::AsyncEngine::builder().zeroed_stacks(true).build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn zeroed_stacks(mut self, zeroed: bool) -> Self {
        self.zeroed_stacks = zeroed;
        self
    }

    /// Under [`Allocation::Pooling`], how many bytes at the start of each returned linear
    /// memory are reset by copying from the module's image and kept mapped; the rest is
    /// released to the operating system (in batches) and refaulted by the next store that
    /// touches it. 4 KiB unless set. More is not always better: kept pages stay resident in
    /// every warm slot, and for the demo's C plugin 64 to 128 KiB cost 1.2x the time per
    /// request and 3x to 5x the memory of 4 KiB. Measure with your guest
    /// (`cargo bench -p async-wasm --bench pooling_tuning` shows how).
    ///
    /// # Example
    ///
    /// ```
    /// let engine = async_wasm::AsyncEngine::builder()
    ///     .memory_keep_resident(16 << 10)
    ///     .build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn memory_keep_resident(mut self, bytes: usize) -> Self {
        self.memory_keep_resident = bytes;
        self
    }

    /// Makes running guests yield to the executor every `interval` (epoch interruption,
    /// with a clock the engine owns), so that a guest in a long loop does not starve the
    /// tasks beside it on its thread.
    ///
    /// The cost: a load and a compare at every loop back-edge and function entry of the
    /// guest's code, and a fiber switch per interval per running guest.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let engine = async_wasm::AsyncEngine::builder()
    ///     .yield_every(Duration::from_millis(1))
    ///     .build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn yield_every(mut self, interval: Duration) -> Self {
        self.yield_every = Some(interval);
        self
    }

    /// Stops a store's guests `timeout` after the store is made (or after
    /// [`AsyncEngine::restart_timeout`]): a guest still running then is interrupted where
    /// it is, and its call ends with [`DeadlineExceeded`]. This interrupts wasm, unlike a
    /// timer around the call future, which can only fire when the guest yields. It is
    /// checked on every epoch tick (every [`yield_every`](AsyncEngineBuilder::yield_every)
    /// interval, or a tenth of the timeout, at most 10 ms, when that is not set).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let engine = async_wasm::AsyncEngine::builder()
    ///     .timeout(Duration::from_millis(500))
    ///     .build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Caps the bytes one call of a data host function moves, for every host function
    /// defined on this engine (through [`LinkerExt`](crate::LinkerExt),
    /// [`FuncExt`](crate::FuncExt) or [`#[async_host]`](crate::async_host)) without a cap of
    /// its own: its data parameters together, and its result, each at most `bytes`.
    /// Without it, [`GuestAbi::DEFAULT_MAX_LEN`](crate::data::GuestAbi::DEFAULT_MAX_LEN).
    /// A call over the cap fails with
    /// [`DataErrorKind::TooLarge`](crate::data::DataErrorKind::TooLarge) before anything is
    /// copied or allocated.
    ///
    /// The cap is found when a host function is defined, not at each call: define host
    /// functions on the built engine (as one does).
    ///
    /// # Example
    ///
    /// ```
    /// let engine = async_wasm::AsyncEngine::builder().max_data_len(1 << 20).build()?;
    /// # drop(engine);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn max_data_len(mut self, bytes: u32) -> Self {
        self.max_data_len = Some(bytes);
        self
    }

    /// Makes the engine.
    ///
    /// # Errors
    ///
    /// When wasmtime refuses the configuration: for instance a stack size below the
    /// config's `max_wasm_stack` (the message says which to change), a zero interval or
    /// timeout, or a pool that cannot be reserved.
    ///
    /// # Example
    ///
    /// ```
    /// let err = async_wasm::AsyncEngine::builder().stack_size(64 << 10).build().unwrap_err();
    /// assert!(format!("{err:?}").contains("max_wasm_stack"), "{err:?}");
    /// ```
    pub fn build(self) -> wasmtime::Result<AsyncEngine> {
        let mut config = self.config.clone();
        config.async_stack_zeroing(self.zeroed_stacks);
        let interval = self.epoch_interval()?;
        config.epoch_interruption(interval.is_some());
        let (engine, stack_pool) = match self.allocation {
            Allocation::Pooling => {
                config.async_stack_size(self.stack_size);
                config.allocation_strategy(InstanceAllocationStrategy::Pooling(
                    self.pooling_config(),
                ));
                let engine = Engine::new(&config).map_err(|err| {
                    err.context(format!(
                        "cannot make a pooling AsyncEngine with {} KiB stacks for {} stores",
                        self.stack_size / 1024,
                        self.max_stores.unwrap_or(DEFAULT_POOLING_STORES)
                    ))
                })?;
                (engine, None)
            }
            Allocation::StackPool => {
                let mut pool = StackPool::builder(self.stack_size);
                if let Some(n) = self.max_stores {
                    pool = pool.max_stacks((n as usize).saturating_mul(STACKS_PER_STORE as usize));
                }
                let pool = pool.build()?;
                if self.max_memory_size.is_some() {
                    wasmtime::bail!(
                        "max_memory_size sizes the pooling allocator's memory slots; under \
                         Allocation::StackPool, limit memories per store with a \
                         wasmtime::ResourceLimiter (Store::limiter) instead"
                    );
                }
                (pool.engine(&config)?, Some(pool))
            }
        };
        let policy = match interval {
            None => None,
            Some(interval) => Some(Policy {
                yields: self.yield_every.is_some(),
                timeout: self.timeout,
                ticker: Arc::new(EpochTicker::start(&engine, interval)?),
            }),
        };
        if let Some(bytes) = self.max_data_len {
            crate::data::limit::register(&engine, bytes);
        }
        Ok(AsyncEngine {
            engine,
            stack_pool,
            policy,
        })
    }

    /// The epoch clock's interval, if the engine needs one.
    fn epoch_interval(&self) -> wasmtime::Result<Option<Duration>> {
        if self.yield_every.is_some_and(|i| i.is_zero()) {
            wasmtime::bail!("yield_every needs an interval above zero");
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            wasmtime::bail!("timeout needs a duration above zero");
        }
        Ok(match (self.yield_every, self.timeout) {
            (Some(interval), _) => Some(interval),
            (None, Some(timeout)) => {
                Some((timeout / 10).clamp(Duration::from_micros(100), Duration::from_millis(10)))
            }
            (None, None) => None,
        })
    }

    /// wasmtime's pooling allocator, bounded by `max_stores` and tuned for a store per
    /// request. Each setting was chosen by measurement (`cargo bench -p async-wasm --bench
    /// pooling_tuning`, interleaved rounds; together 0.37x the per-request time of
    /// wasmtime's pooling defaults for an async guest with a memory).
    fn pooling_config(&self) -> PoolingAllocationConfig {
        let stores = self.max_stores.unwrap_or(DEFAULT_POOLING_STORES);
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_core_instances(stores)
            .total_memories(stores)
            .total_tables(stores)
            .total_stacks(stores.saturating_mul(STACKS_PER_STORE))
            // Reset the pages a guest touched by copying them from the module's image and
            // keep them mapped, instead of dropping them with madvise for the next store to
            // refault: wasmtime's default, 0, is 1.9x-2x slower for a guest with memory.
            .linear_memory_keep_resident(self.memory_keep_resident)
            // With zeroed stacks, memset the top of a returned stack (what a short call
            // touched) and decommit the rest: 0 is 1.9x slower.
            .async_stack_keep_resident(STACK_KEEP_RESIDENT)
            // Release memory 32 slots at a time in one call: 1 (the default) is 1.2x-1.3x
            // slower...
            .decommit_batch_size(32)
            // ...which holds slots back until their batch goes; enough warm slots keep those
            // from pushing stores onto cold slots (2.9x-3.6x slower when they did).
            .max_unused_warm_slots(stores.max(DEFAULT_WARM_SLOTS));
        if let Some(bytes) = self.max_memory_size {
            pooling.max_memory_size(bytes);
        }
        pooling
    }
}

/// Stacks one store may hold at once: its own, and, once a host function has returned data
/// to the guest, the one wasmtime ran the nested call into the guest's allocator on, which
/// it keeps cached in the store until the outer call ends.
const STACKS_PER_STORE: u32 = 2;

/// Bytes at the top of a returned stack that zeroing memsets rather than decommits.
const STACK_KEEP_RESIDENT: usize = 8 << 10;

/// wasmtime's default count of warm slots, below which `max_unused_warm_slots` is not set.
const DEFAULT_WARM_SLOTS: u32 = 100;

/// An engine set up for async guests, a store per request or per connection, as this
/// crate recommends: stacks and memories from a pool ([`Allocation`]), bounds, zeroing,
/// cooperative yields with a clock it owns, and a deadline that really stops a spinning
/// guest; and the stores to go with it.
///
/// Each step of that recipe done by hand can be done half: a [`StackPool`] never passed to
/// the config, a stack smaller than `max_wasm_stack`, epoch interruption without a clock (a
/// spinning guest then hangs its thread for good) or without a per-store deadline (the
/// first epoch check traps, in a reactor's `_initialize`). Here none can: every store comes
/// from [`store`](AsyncEngine::store), with its deadline set, and the clock runs as long as
/// the engine or any of its stores does. The raw pieces ([`StackPool`], [`EpochTicker`])
/// stay available.
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
///     .yield_every(Duration::from_millis(1))
///     .timeout(Duration::from_millis(50))
///     .build()?;
/// let module = Module::new(engine.engine(), r#"(module
///     (func (export "spin") (loop $forever (br $forever))))"#)?;
/// let linker = Linker::new(engine.engine());
/// let pre = linker.instantiate_pre(&module)?;
///
/// // A store per request.
/// let mut store = engine.store(());
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
}

impl AsyncEngine {
    /// Starts building an engine.
    ///
    /// # Example
    ///
    /// See [`AsyncEngine`].
    pub fn builder() -> AsyncEngineBuilder {
        AsyncEngineBuilder::new()
    }

    /// The wasmtime engine, for modules, linkers and `InstancePre`s. Make its stores with
    /// [`store`](AsyncEngine::store).
    ///
    /// # Example
    ///
    /// See [`AsyncEngine`].
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A store of this engine, with the engine's yield and deadline policy installed; its
    /// [timeout](AsyncEngineBuilder::timeout) starts now.
    ///
    /// # Example
    ///
    /// See [`AsyncEngine`].
    pub fn store<T>(&self, data: T) -> Store<T> {
        let mut store = Store::new(&self.engine, data);
        if let Some(policy) = &self.policy {
            policy.apply(&mut store);
        }
        store
    }

    /// Starts the store's [timeout](AsyncEngineBuilder::timeout) again from now, for a
    /// store that serves more than one request (a connection's). Does nothing without a
    /// timeout.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let engine = async_wasm::AsyncEngine::builder().timeout(Duration::from_secs(1)).build()?;
    /// let mut store = engine.store(());
    /// // ... one request ...
    /// engine.restart_timeout(&mut store);
    /// // ... the next, with a full second again ...
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn restart_timeout<T>(&self, store: &mut Store<T>) {
        if let Some(policy) = &self.policy {
            policy.apply(store);
        }
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
            .finish_non_exhaustive()
    }
}
