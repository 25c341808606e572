//! [`AsyncEngineBuilder`]: every setting of an [`AsyncEngine`], checked together by
//! `build`.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::deadline::Policy;
use super::slots::Slots;
use super::{AsyncEngine, EngineError, headroom};
use crate::{EpochTicker, StackPool};

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
    /// [`StackPool`]. For guests without a memory, concurrency with no peak you can name
    /// ([`max_stores`](AsyncEngineBuilder::max_stores) is then a bound on stacks, which you
    /// may leave unset: the pool then stops at what the process can map, with an error),
    /// or little address space.
    StackPool,
}

/// Builds an [`AsyncEngine`]: see there for what it sets up.
///
/// Each setting has one meaning, and `build` refuses, with an [`EngineError`], what would
/// otherwise be ignored or overridden: a setting the chosen [`Allocation`] has no use for,
/// a zero that would refuse every store, a stack that leaves host functions less than
/// [`MIN_HOST_STACK`](crate::MIN_HOST_STACK), and a [`config`](AsyncEngineBuilder::config)
/// that turns on what the builder owns.
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
    max_waiting: Option<usize>,
    acquire_timeout: Option<Duration>,
    max_memory_size: Option<usize>,
    stack_size: usize,
    zeroed_stacks: bool,
    memory_keep_resident: Option<usize>,
    yield_every: Option<Duration>,
    timeout: Option<Duration>,
    fuel: Option<u64>,
    max_data_len: Option<u32>,
}

impl core::fmt::Debug for AsyncEngineBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncEngineBuilder")
            .field("allocation", &self.allocation)
            .field("max_stores", &self.max_stores)
            .field("max_waiting", &self.max_waiting)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("max_memory_size", &self.max_memory_size)
            .field("stack_size", &self.stack_size)
            .field("zeroed_stacks", &self.zeroed_stacks)
            .field("memory_keep_resident", &self.memory_keep_resident)
            .field("yield_every", &self.yield_every)
            .field("timeout", &self.timeout)
            .field("fuel", &self.fuel)
            .field("max_data_len", &self.max_data_len)
            .finish_non_exhaustive()
    }
}

/// Stores with an instance at once under [`Allocation::Pooling`] unless set: wasmtime's
/// own default for its pool.
const DEFAULT_POOLING_STORES: u32 = 1_000;

/// How long [`AsyncEngine::acquire_store`] waits for a slot unless set: bb8's default
/// connection timeout, long enough for any spike a pool should absorb.
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Under [`Allocation::Pooling`], the bytes at the start of each returned linear memory
/// kept resident unless set.
const DEFAULT_MEMORY_KEEP_RESIDENT: usize = 4 << 10;

impl AsyncEngineBuilder {
    pub(super) fn new() -> AsyncEngineBuilder {
        AsyncEngineBuilder {
            config: Config::new(),
            allocation: Allocation::Pooling,
            max_stores: None,
            max_waiting: None,
            acquire_timeout: None,
            max_memory_size: None,
            stack_size: 1 << 20,
            zeroed_stacks: false,
            memory_keep_resident: None,
            yield_every: None,
            timeout: None,
            fuel: None,
            max_data_len: None,
        }
    }

    /// Starts from `config` (wasm features, compiler settings, `max_wasm_stack`...)
    /// instead of `Config::new()`.
    ///
    /// The builder owns some settings, one behaviour each:
    ///
    /// - replaced by the builder's, whatever `config` says: the allocation strategy
    ///   ([`allocation`](AsyncEngineBuilder::allocation),
    ///   [`max_stores`](AsyncEngineBuilder::max_stores)...), the async stack size
    ///   ([`stack_size`](AsyncEngineBuilder::stack_size)) and the stack creator;
    /// - refused by [`build`](AsyncEngineBuilder::build) when `config` turns them on and
    ///   the builder was not asked for them ([`EngineError::OwnedByBuilder`]): epoch
    ///   interruption ([`yield_every`](AsyncEngineBuilder::yield_every),
    ///   [`timeout`](AsyncEngineBuilder::timeout)), fuel
    ///   ([`fuel`](AsyncEngineBuilder::fuel)) and stack zeroing
    ///   ([`zeroed_stacks`](AsyncEngineBuilder::zeroed_stacks)). Each needs something per
    ///   store that only the builder's stores get: a deadline, fuel to start with.
    ///
    /// # Example
    ///
    /// ```
    /// let mut config = wasmtime::Config::new();
    /// config.wasm_simd(true);
    /// let engine = async_wasm::AsyncEngine::builder().config(config).build()?;
    /// # drop(engine);
    ///
    /// let mut fuel = wasmtime::Config::new();
    /// fuel.consume_fuel(true); // every store would start with none: ask the builder
    /// assert!(async_wasm::AsyncEngine::builder().config(fuel).build().is_err());
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

    /// At most `n` stores at once: the slots [`AsyncEngine::acquire_store`] waits for, and
    /// what the engine reserves. Under [`Allocation::Pooling`] the default is 1,000, and
    /// the instance, memory and stack slots for all `n` are reserved up front; under
    /// [`Allocation::StackPool`] `n` bounds the pool's stacks, and without it the pool's
    /// own default bound applies (what the process can map: see
    /// [`StackPoolBuilder::max_stacks`](crate::StackPoolBuilder::max_stacks)). (Under `Pooling`, the memory, table and
    /// stack slots number a few more: 32 per CPU, for at most 16 CPUs, so that slots a
    /// dropped store returned but wasmtime has not yet put back do not fail the store
    /// admitted in its place. Instances stay at `n`.)
    ///
    /// A store from [`acquire_store`](AsyncEngine::acquire_store) holds a slot from the
    /// start, and waits for one when all are taken. A store from
    /// [`store`](AsyncEngine::store) holds none and never waits: past the bound, the
    /// instantiation or call that needed one more fails with an error (wasmtime's
    /// [`PoolConcurrencyLimitError`](wasmtime::PoolConcurrencyLimitError), or
    /// [`StackPoolError::Exhausted`](crate::StackPoolError::Exhausted)) and every other
    /// store goes on. Serve each request through one or the other on an engine: stores
    /// from `store` take what `acquire_store` promised its waiters.
    ///
    /// A store holds one instance; each gets two stacks' worth of the bound, since a store
    /// whose host function has handed data to the guest holds a second stack until its
    /// call ends (see [`data`](crate::data#why-an-exported-allocator)).
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

    /// At most `n` [`acquire_store`](AsyncEngine::acquire_store) calls wait for a slot at
    /// once; one more fails at once with
    /// [`AcquireError::QueueFull`](crate::AcquireError::QueueFull). `0` makes
    /// `acquire_store` never wait. No bound unless set: the requests a server admits
    /// bound it, and [`acquire_timeout`](AsyncEngineBuilder::acquire_timeout) bounds how
    /// long each waits. Under [`Allocation::StackPool`] without
    /// [`max_stores`](AsyncEngineBuilder::max_stores) nothing waits, and `build` refuses
    /// it ([`EngineError::NotUnder`]).
    ///
    /// # Example
    ///
    /// See [`AcquireError`](crate::AcquireError).
    pub fn max_waiting(mut self, n: usize) -> Self {
        self.max_waiting = Some(n);
        self
    }

    /// How long [`acquire_store`](AsyncEngine::acquire_store) waits for a slot before it
    /// fails with [`AcquireError::TimedOut`](crate::AcquireError::TimedOut); 30 seconds
    /// unless set, [`Duration::MAX`] for no limit. The wait is also cancel-safe: dropping
    /// it (a timeout of your executor's, a `select!`) gives up its place in the queue. The
    /// timeout runs on a thread of the engine's (`async-wasm-wait`), started while anyone
    /// waits. Refused, like [`max_waiting`](AsyncEngineBuilder::max_waiting), where nothing
    /// waits.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use async_wasm::{AcquireError, AsyncEngine};
    ///
    /// # futures::executor::block_on(async {
    /// let engine = AsyncEngine::builder()
    ///     .max_stores(1)
    ///     .acquire_timeout(Duration::from_millis(10))
    ///     .build()?;
    /// let held = engine.acquire_store(()).await?;
    /// let err = engine.acquire_store(()).await.unwrap_err();
    /// assert!(matches!(err, AcquireError::TimedOut { .. }));
    /// # drop(held);
    /// # wasmtime::Result::<()>::Ok(())
    /// # })?;
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = Some(timeout);
        self
    }

    /// The largest a guest's linear memory may grow, in bytes, under
    /// [`Allocation::Pooling`]: a guest that grows past it gets `-1` from `memory.grow`, as
    /// from any limit. Unless set, wasmtime's default (4 GiB). Under
    /// [`Allocation::StackPool`], `build` refuses it ([`EngineError::NotUnder`]): limit
    /// memories per store with a [`ResourceLimiter`](wasmtime::ResourceLimiter).
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

    /// The usable bytes of each async stack, 1 MiB unless set: wasm gets
    /// [`Config::max_wasm_stack`](wasmtime::Config::max_wasm_stack) of it (512 KiB unless
    /// set in [`config`](AsyncEngineBuilder::config)) and host functions the rest, which
    /// must be at least [`MIN_HOST_STACK`](crate::MIN_HOST_STACK)
    /// ([`EngineError::HostStackTooSmall`] otherwise).
    ///
    /// # Example
    ///
    /// ```
    /// let mut config = wasmtime::Config::new();
    /// config.max_wasm_stack(128 << 10);
    /// let engine = async_wasm::AsyncEngine::builder()
    ///     .config(config)
    ///     .stack_size(512 << 10)
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
    /// touches it. 4 KiB unless set. Under [`Allocation::StackPool`], whose memories are
    /// unmapped with their store, `build` refuses it ([`EngineError::NotUnder`]).
    ///
    /// More is not always better: kept pages stay resident in every warm slot, and for a
    /// guest that touches little memory the copy costs more than the refault saves. The
    /// README has the measurements; `cargo bench -p async-wasm --bench pooling_tuning`
    /// measures your guest.
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
        self.memory_keep_resident = Some(bytes);
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
    /// [`AsyncEngine::restart_timeout`]): a guest still running wasm then is interrupted
    /// where it is, and its call ends with [`DeadlineExceeded`](crate::DeadlineExceeded).
    /// This interrupts wasm, unlike a timer around the call future, which can only fire
    /// when the guest yields. It is checked on every epoch tick (every
    /// [`yield_every`](AsyncEngineBuilder::yield_every) interval, or a tenth of the
    /// timeout, at most 10 ms, when that is not set).
    ///
    /// What it does not bound: time the guest spends waiting in a host function's future.
    /// That time counts, but the deadline is only checked while wasm runs, so a host future
    /// that never completes keeps the call waiting. Bound host waits where they happen (a
    /// timeout around the database query), or the whole call with your executor's timer;
    /// dropping a call future cancels the call (see the crate's
    /// [Cancellation](crate#cancellation)).
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

    /// Counts the guest's work in wasmtime's fuel: each store starts with `units` (set
    /// when [`store`](AsyncEngine::store) or [`acquire_store`](AsyncEngine::acquire_store)
    /// makes it), and a guest that has used them traps with
    /// [`Trap::OutOfFuel`](wasmtime::Trap::OutOfFuel). A bound on work, where
    /// [`timeout`](AsyncEngineBuilder::timeout) is a bound on time; a store serving more
    /// than one request gets more with `Store::set_fuel`. Fuel costs more than epochs: a
    /// counter update in every basic block of the guest's code.
    ///
    /// # Example
    ///
    /// ```
    /// let engine = async_wasm::AsyncEngine::builder().fuel(1_000_000).build()?;
    /// assert_eq!(engine.store(()).get_fuel()?, 1_000_000);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn fuel(mut self, units: u64) -> Self {
        self.fuel = Some(units);
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
    /// An [`EngineError`] for the settings it refuses: a stack leaving host functions less
    /// than [`MIN_HOST_STACK`](crate::MIN_HOST_STACK), a zero, a setting the allocation has
    /// no use for, a [`config`](AsyncEngineBuilder::config) that turns on what the builder
    /// owns. wasmtime's own errors otherwise: a configuration it refuses, or a pool it
    /// cannot reserve.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{AsyncEngine, EngineError};
    /// let err = AsyncEngine::builder().max_stores(0).build().unwrap_err();
    /// assert_eq!(
    ///     err.downcast_ref::<EngineError>(),
    ///     Some(&EngineError::Zero { setting: "max_stores" })
    /// );
    /// ```
    pub fn build(self) -> wasmtime::Result<AsyncEngine> {
        self.validate()?;
        let mut config = self.config.clone();
        let interval = self.epoch_interval();
        // Turned on, never off: what `config` turned on unasked is refused below.
        if self.zeroed_stacks {
            config.async_stack_zeroing(true);
        }
        if interval.is_some() {
            config.epoch_interruption(true);
        }
        if self.fuel.is_some() {
            config.consume_fuel(true);
        }
        let (engine, stack_pool) = match self.allocation {
            Allocation::Pooling => {
                config.async_stack_size(self.stack_size);
                config.allocation_strategy(InstanceAllocationStrategy::Pooling(
                    self.pooling_config(),
                ));
                let engine =
                    Engine::new(&config).map_err(|err| {
                        match headroom::explain_failure(&config, self.stack_size) {
                            Some(typed) => err.context(typed),
                            None => err.context(format!(
                                "cannot make a pooling AsyncEngine with {} KiB stacks for {} \
                             stores",
                                self.stack_size / 1024,
                                self.max_stores.unwrap_or(DEFAULT_POOLING_STORES)
                            )),
                        }
                    })?;
                (engine, None)
            }
            Allocation::StackPool => {
                let mut pool = StackPool::builder(self.stack_size);
                if let Some(n) = self.max_stores {
                    pool = pool.max_stacks((n as usize).saturating_mul(STACKS_PER_STORE as usize));
                }
                let pool = pool.build()?;
                (pool.engine(&config)?, Some(pool))
            }
        };
        headroom::check(&engine)?;
        self.check_owned(&engine, interval.is_some())?;
        let policy = match interval {
            None => None,
            Some(interval) => Some(Policy {
                yields: self.yield_every.is_some(),
                timeout: self.timeout,
                ticker: Arc::new(EpochTicker::start(&engine, interval)?),
            }),
        };
        let stores = match (self.allocation, self.max_stores) {
            (_, Some(n)) => Some(n),
            (Allocation::Pooling, None) => Some(DEFAULT_POOLING_STORES),
            (Allocation::StackPool, None) => None,
        };
        let slots = stores.map(|n| {
            Arc::new(Slots::new(
                n as usize,
                self.max_waiting,
                Some(self.acquire_timeout.unwrap_or(DEFAULT_ACQUIRE_TIMEOUT)),
            ))
        });
        if let Some(bytes) = self.max_data_len {
            crate::data::limit::register(&engine, bytes);
        }
        Ok(AsyncEngine {
            engine,
            stack_pool,
            policy,
            fuel: self.fuel,
            slots,
        })
    }

    /// The settings refused before anything is made.
    fn validate(&self) -> Result<(), EngineError> {
        let zero = [
            ("max_stores", self.max_stores == Some(0)),
            ("fuel", self.fuel == Some(0)),
            ("yield_every", self.yield_every.is_some_and(|i| i.is_zero())),
            ("timeout", self.timeout.is_some_and(|t| t.is_zero())),
            (
                "acquire_timeout",
                self.acquire_timeout.is_some_and(|t| t.is_zero()),
            ),
        ];
        if let Some((setting, _)) = zero.into_iter().find(|(_, zero)| *zero) {
            return Err(EngineError::Zero { setting });
        }
        if self.allocation == Allocation::StackPool {
            // Without a bound on stores, nothing ever waits for one.
            let unbounded = self.max_stores.is_none();
            let pooling_only = [
                ("max_memory_size", self.max_memory_size.is_some()),
                ("memory_keep_resident", self.memory_keep_resident.is_some()),
                ("max_waiting", unbounded && self.max_waiting.is_some()),
                (
                    "acquire_timeout",
                    unbounded && self.acquire_timeout.is_some(),
                ),
            ];
            if let Some((setting, _)) = pooling_only.into_iter().find(|(_, set)| *set) {
                return Err(EngineError::NotUnder {
                    setting,
                    allocation: self.allocation,
                });
            }
        }
        Ok(())
    }

    /// What `config` turned on that the builder owns and was not asked for.
    fn check_owned(&self, engine: &Engine, epochs: bool) -> Result<(), EngineError> {
        let unasked = [
            (
                "Config::epoch_interruption",
                "yield_every or timeout",
                engine.get_epoch_interruption() && !epochs,
            ),
            (
                "Config::consume_fuel",
                "fuel",
                engine.get_consume_fuel() && self.fuel.is_none(),
            ),
            (
                "Config::async_stack_zeroing",
                "zeroed_stacks",
                engine.get_async_stack_zeroing() && !self.zeroed_stacks,
            ),
        ];
        match unasked.into_iter().find(|(_, _, unasked)| *unasked) {
            Some((config_setting, builder_setting, _)) => Err(EngineError::OwnedByBuilder {
                config_setting,
                builder_setting,
            }),
            None => Ok(()),
        }
    }

    /// The epoch clock's interval, if the engine needs one.
    fn epoch_interval(&self) -> Option<Duration> {
        match (self.yield_every, self.timeout) {
            (Some(interval), _) => Some(interval),
            (None, Some(timeout)) => {
                Some((timeout / 10).clamp(Duration::from_micros(100), Duration::from_millis(10)))
            }
            (None, None) => None,
        }
    }

    // wasmtime's pooling allocator, bounded by `max_stores` and tuned for a store per
    // request. Each setting was chosen by measurement (`cargo bench -p async-wasm --bench
    // pooling_tuning`, interleaved rounds; the README has the figures).
    fn pooling_config(&self) -> PoolingAllocationConfig {
        let stores = self.max_stores.unwrap_or(DEFAULT_POOLING_STORES);
        let in_flight = in_flight_slots();
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_core_instances(stores)
            .total_memories(stores.saturating_add(in_flight))
            .total_tables(stores.saturating_add(in_flight))
            .total_stacks(
                stores
                    .saturating_add(in_flight)
                    .saturating_mul(STACKS_PER_STORE),
            )
            // Reset the pages a guest touched by copying them from the module's image and
            // keep them mapped, instead of dropping them with madvise for the next store to
            // refault: wasmtime's default, 0, is about twice as slow for a guest with memory.
            .linear_memory_keep_resident(
                self.memory_keep_resident
                    .unwrap_or(DEFAULT_MEMORY_KEEP_RESIDENT),
            )
            // With zeroed stacks, memset the top of a returned stack (what a short call
            // touched) and decommit the rest: 0 is about twice as slow.
            .async_stack_keep_resident(STACK_KEEP_RESIDENT)
            // Release memory 32 slots at a time in one call: 1 (the default) is slower...
            .decommit_batch_size(DECOMMIT_BATCH as usize)
            // ...which holds slots back until their batch goes; enough warm slots keep those
            // from pushing stores onto cold slots (several times slower when they did).
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

/// Memory, table and stack slots wasmtime's pool has beyond `max_stores`, for those a
/// dropped store has returned but that are still on their way back to the pool.
///
/// wasmtime returns a store's memory and table slots through a decommit queue, sharded
/// per thread (one shard per CPU, at most 16) and flushed in batches; an allocation that
/// finds the pool full flushes the shards, but slots another thread is flushing at that
/// moment are in neither the queue nor the pool. With a pool of exactly `max_stores`
/// slots, a store that [`acquire_store`](super::AsyncEngine::acquire_store) admitted after
/// another was dropped then failed now and then on a multi-thread runtime (`maximum
/// concurrent limit of 50 for memory stripe 0 reached`). One batch per shard more covers
/// a flush in flight on every shard at once.
fn in_flight_slots() -> u32 {
    let shards = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
    DECOMMIT_BATCH.saturating_mul(shards as u32)
}

/// Bytes at the top of a returned stack that zeroing memsets rather than decommits.
const STACK_KEEP_RESIDENT: usize = 8 << 10;

/// Memory slots released to the operating system in one call.
const DECOMMIT_BATCH: u32 = 32;

/// wasmtime's default count of warm slots, below which `max_unused_warm_slots` is not set.
const DEFAULT_WARM_SLOTS: u32 = 100;
