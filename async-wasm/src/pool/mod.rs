//! [`StackPool`]: stacks lent to wasmtime's fibers and taken back when wasmtime drops them.
//!
//! wasmtime asks its stack creator for a stack the first time a store makes an async call,
//! keeps it cached in the store for the store's next calls, and drops it with the store.
//! Without a pool each of those is an `mmap`, an `mprotect` and a `munmap`: for a service
//! that makes a store per request, most of the request's cost. The pool turns them into
//! taking an idle stack from a slot or a list, and putting it back.
//!
//! Zeroing, when the engine asks for it, happens as a stack comes back and once the pool
//! has decided to keep it: the top `keep_resident` bytes are written with zeros (they stay
//! resident, so the next call does not fault them in again), and the rest waits in
//! `awaiting_decommit` until `decommit_batch` stacks can be given back to the operating
//! system in one system call. Only stacks whose every usable byte is zero (`clean`) are
//! lent to a zeroing engine.
//!
//! Without zeroing, a returned stack goes to the slot of the thread that returned it
//! (`cache`), so that most leases and returns take no lock at all. The counters are
//! atomics for the same reason; the lock guards the lists of idle stacks.
//!
//! Two bounds keep the pool finite: `max_stacks` (by default derived from the mappings
//! the process may hold, `bound`) and `max_idle`; [`StackPool::trim`] gives idle stacks
//! back on demand.

mod bound;
mod cache;
mod lease;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cache::Slots;
use lease::PoolStackCreator;

use crate::stack::{self, Stack, StackPoolError, round_to_page};

/// A shared pool of [`Stack`]s that an engine draws every async stack from.
///
/// Cloning gives another handle to the same pool; the engines configured with it hold one
/// too, so the pool lives as long as any of them, and its idle stacks are unmapped with it.
/// A stack returns to the pool when wasmtime drops it; the pool keeps up to
/// [`max_idle`](StackPool::max_idle) of them for the next store and unmaps the rest, and
/// lends at most [`max_stacks`](StackPool::max_stacks) at once. Both are set with
/// [`StackPool::builder`]; [`trim`](StackPool::trim) gives idle stacks back on demand.
///
/// # What a lent stack counts
///
/// wasmtime leases a stack the first time a store makes an async call (an instantiation
/// that runs a start function counts) and keeps it cached in the store until the store is
/// dropped: nothing in wasmtime's public API gives it back earlier. So
/// [`in_use`](StackPoolStats::in_use) and the [`max_stacks`](StackPool::max_stacks) bound
/// count live stores that have made an async call, not calls in flight: an idle store per
/// connection keeps its stack. Each stack is its size in address space, what its calls
/// touched in resident memory, and two memory mappings (on Linux, of the
/// `vm.max_map_count` the process may hold): the README measures them.
///
/// # What a store can see on its stack
///
/// Without zeroing, a store's first call runs on a stack that still holds whatever the
/// previous store's calls left below the stack pointer: return addresses, spilled
/// registers, host functions' locals. wasm cannot read the native stack, so a guest cannot
/// see it; only host code reading uninitialized stack memory could (wasmtime's pooling
/// allocator behaves the same). With
/// [`Config::async_stack_zeroing(true)`](wasmtime::Config::async_stack_zeroing) every
/// stack lent to that engine is zero in every byte: a multi-tenant host whose host
/// functions might leak uninitialized memory (`unsafe` code, FFI) should turn it on, as
/// defence in depth. The pool zeroes a stack it keeps as it comes back, the way wasmtime's
/// pooling allocator does: it writes zeros over the top
/// [`keep_resident`](StackPoolBuilder::keep_resident) bytes and gives the rest back to the
/// operating system, [`decommit_batch`](StackPoolBuilder::decommit_batch) stacks per
/// system call. The README measures what that costs.
///
/// # Example
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Config, Instance, Module, Store};
///
/// # #[cfg(unix)] {
/// let pool = StackPool::new(1 << 20);
/// let engine = pool.engine(&Config::new())?;
/// let module = Module::new(&engine, r#"(module (func (export "f") (result i32) i32.const 7))"#)?;
///
/// futures::executor::block_on(async {
///     for _request in 0..3 {
///         let mut store = Store::new(&engine, ());
///         let instance = Instance::new_async(&mut store, &module, &[]).await?;
///         let f = instance.get_func(&mut store, "f").unwrap();
///         assert_eq!(f.get_async().get0::<i32>(&store)?.call(&mut store).await?, 7);
///     }
///     wasmtime::Result::<()>::Ok(())
/// })?;
/// let stats = pool.stats();
/// assert_eq!((stats.created, stats.reused, stats.in_use, stats.idle), (1, 2, 0, 1));
/// # }
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Clone)]
pub struct StackPool {
    shared: Arc<Shared>,
}

/// Makes a [`StackPool`] with limits other than the defaults; from [`StackPool::builder`].
///
/// Every limit is fixed when the pool is built, for every handle and every engine that
/// uses it.
///
/// # Example
///
/// ```
/// use async_wasm::StackPool;
///
/// let pool = StackPool::builder(1 << 20)
///     .max_stacks(10_000)
///     .max_idle(256)
///     .build()?;
/// assert_eq!((pool.max_stacks(), pool.max_idle()), (10_000, 256));
/// # Ok::<(), async_wasm::StackPoolError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct StackPoolBuilder {
    stack_size: usize,
    max_idle: usize,
    max_stacks: usize,
    keep_resident: usize,
    decommit_batch: usize,
}

/// What every handle shares. The limits never change after `build`, and the counters are
/// atomics, so both are read without the lock.
struct Shared {
    /// The usable size of every stack, page-rounded.
    stack_size: usize,
    max_idle: usize,
    max_stacks: usize,
    /// Bytes at the top of a stack zeroed by writing, page-rounded, at most `stack_size`.
    keep_resident: usize,
    decommit_batch: usize,
    /// Stacks lent to wasmtime now; at most `max_stacks`.
    in_use: AtomicUsize,
    /// Idle stacks wherever they wait: `State`'s lists, a batch being decommitted, the
    /// slots. At most `max_idle`: a stack only becomes idle through `reserve_idle`.
    idle: AtomicUsize,
    created: AtomicU64,
    reused: AtomicU64,
    /// Idle stacks as their last store left them, one per thread as far as they go.
    slots: Slots,
    state: Mutex<State>,
}

/// The idle stacks that are not in a slot, by how much of them is known to be zero.
struct State {
    /// Every usable byte zero: fresh, or zeroed. Lent first to zeroing engines.
    clean: Vec<Stack>,
    /// The top `keep_resident` bytes zero, the rest not yet given back to the system.
    awaiting_decommit: Vec<Stack>,
    /// As the last store left them: lent by an engine that does not zero.
    dirty: Vec<Stack>,
}

/// A snapshot of a [`StackPool`]'s counters, from [`StackPool::stats`].
///
/// # Example
///
/// ```
/// # #[cfg(unix)] {
/// let pool = async_wasm::StackPool::new(1 << 16);
/// pool.prewarm(2)?;
/// let stats = pool.stats();
/// assert_eq!((stats.created, stats.reused, stats.idle, stats.in_use), (2, 0, 2, 0));
/// # }
/// # Ok::<(), async_wasm::StackPoolError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackPoolStats {
    /// Stacks allocated since the pool was made, by leases, [`StackPool::prewarm`] or not.
    pub created: u64,
    /// Leases served from an idle stack instead of a new one.
    pub reused: u64,
    /// Stacks waiting in the pool.
    pub idle: usize,
    /// Stacks lent to wasmtime right now: one per live store that has made an async call.
    pub in_use: usize,
}

impl StackPoolBuilder {
    /// The default of [`max_idle`](StackPoolBuilder::max_idle).
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{StackPool, StackPoolBuilder};
    ///
    /// assert_eq!(StackPool::new(1 << 20).max_idle(), StackPoolBuilder::DEFAULT_MAX_IDLE);
    /// ```
    pub const DEFAULT_MAX_IDLE: usize = 256;

    /// Keeps at most `n` idle stacks; a stack given back beyond that is unmapped at once.
    /// The default, [`DEFAULT_MAX_IDLE`](Self::DEFAULT_MAX_IDLE) (256), keeps enough for
    /// the stores a busy server makes and drops between two of its requests, and no more:
    /// after a load spike the pool shrinks back to it as the spike's stores are dropped.
    /// Raise it where stores come and go in larger waves (each stack it keeps is two
    /// mappings, its size in address space, and the pages its calls touched, resident);
    /// [`trim`](StackPool::trim) gives idle stacks back when you choose. `0` keeps none:
    /// every store maps a fresh stack.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// let pool = async_wasm::StackPool::builder(1 << 16).max_idle(1).build()?;
    /// pool.prewarm(4)?;
    /// assert_eq!(pool.stats().idle, 1);
    /// # }
    /// # Ok::<(), async_wasm::StackPoolError>(())
    /// ```
    pub fn max_idle(mut self, n: usize) -> StackPoolBuilder {
        self.max_idle = n;
        self
    }

    /// Lends at most `n` stacks at once. Past it, the call or instantiation that needed a
    /// stack fails with [`StackPoolError::Exhausted`], and every other store goes on.
    ///
    /// The default is what this process can map: half of the memory mappings it may hold
    /// (on Linux `vm.max_map_count`, read once; elsewhere Linux's default of 65,530 is
    /// assumed), divided by the mappings each stack takes (two on Linux). That is 16,382
    /// stacks with Linux's default, and it leaves the other half to the rest of the process: guest
    /// memories (about three mappings each), the allocator, libraries, other pools. Past
    /// it, a lease is a typed error instead of a mapping the process cannot afford
    /// (running out of mappings can abort a process, wherever the next `mmap` is). Set a
    /// bound of your own where guests have memories or several pools share the process,
    /// and to raise it for many idle stores (then raise `vm.max_map_count` too).
    ///
    /// A store holds its stack from its first async call until it is dropped, so this
    /// bounds the live stores that have made an async call, not the calls in flight. A
    /// store whose host function has handed data to the guest (a
    /// [`data`](crate::data) result) holds a second stack until that call ends: count two
    /// per such store.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::builder(1 << 20).max_stacks(1_000).build()?;
    /// assert_eq!(pool.max_stacks(), 1_000);
    /// # Ok::<(), async_wasm::StackPoolError>(())
    /// ```
    pub fn max_stacks(mut self, n: usize) -> StackPoolBuilder {
        self.max_stacks = n;
        self
    }

    /// With [`Config::async_stack_zeroing(true)`](wasmtime::Config::async_stack_zeroing),
    /// how many bytes at the top of each stack are zeroed by writing zeros, in whole pages;
    /// the memory below is given back to the operating system and reads as zero the next
    /// time it is touched, at the cost of a page fault then. The default, 8 KiB, is twice
    /// what wasmtime's entry and a small host function touch (the top page); raise it to
    /// the depth your host functions reach on every call, since each page below it that
    /// every call touches is given back and faulted in again by the next store, which
    /// costs more than writing it. [`trim`](StackPool::trim) gives back what lies below it
    /// on idle stacks, zeroing or not.
    ///
    /// Without zeroing this does nothing else.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::builder(1 << 20).keep_resident(5000).build()?;
    /// assert_eq!(pool.keep_resident() % 4096, 0);
    /// # Ok::<(), async_wasm::StackPoolError>(())
    /// ```
    pub fn keep_resident(mut self, bytes: usize) -> StackPoolBuilder {
        self.keep_resident = bytes;
        self
    }

    /// With zeroing, how many returned stacks wait for the part below
    /// [`keep_resident`](StackPoolBuilder::keep_resident) to be given back to the operating
    /// system together, in one system call (at most [`max_idle`](Self::max_idle) of them);
    /// meanwhile the pool lends other stacks, and grows by up to `n` stacks to have them:
    /// `n` more stacks' worth of mappings and address space, and of resident memory only
    /// what deep calls touched below `keep_resident`, until the batch is given back. The
    /// default is 32; `1` gives each stack back as it returns (`0` counts as `1`).
    ///
    /// Without zeroing this does nothing.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::builder(1 << 20).decommit_batch(32).build()?;
    /// assert_eq!(pool.decommit_batch(), 32);
    /// # Ok::<(), async_wasm::StackPoolError>(())
    /// ```
    pub fn decommit_batch(mut self, n: usize) -> StackPoolBuilder {
        self.decommit_batch = n.max(1);
        self
    }

    /// Makes the pool. Nothing is allocated until a stack is needed or
    /// [`prewarm`](StackPool::prewarm)ed.
    ///
    /// On targets where wasmtime cannot use custom stacks (all but unix) the pool is made,
    /// and every use of it that needs a stack ([`configure`](StackPool::configure),
    /// [`engine`](StackPool::engine), [`prewarm`](StackPool::prewarm)) returns
    /// [`StackPoolError::Unsupported`].
    ///
    /// # Errors
    ///
    /// [`StackPoolError::InvalidSize`] when the stack size is 0 or above
    /// [`Stack::MAX_SIZE`].
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{StackPool, StackPoolError};
    ///
    /// assert_eq!(StackPool::builder(5000).build()?.stack_size() % 4096, 0);
    /// assert!(matches!(
    ///     StackPool::builder(0).build(),
    ///     Err(StackPoolError::InvalidSize { size: 0 })
    /// ));
    /// # Ok::<(), StackPoolError>(())
    /// ```
    pub fn build(self) -> Result<StackPool, StackPoolError> {
        if !(1..=Stack::MAX_SIZE).contains(&self.stack_size) {
            return Err(StackPoolError::InvalidSize {
                size: self.stack_size,
            });
        }
        let stack_size = round_to_page(self.stack_size);
        Ok(StackPool {
            shared: Arc::new(Shared {
                stack_size,
                max_idle: self.max_idle,
                max_stacks: self.max_stacks,
                keep_resident: round_to_page(self.keep_resident.min(stack_size)),
                decommit_batch: self.decommit_batch,
                in_use: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                created: AtomicU64::new(0),
                reused: AtomicU64::new(0),
                slots: Slots::new(),
                state: Mutex::new(State {
                    clean: Vec::new(),
                    awaiting_decommit: Vec::new(),
                    dirty: Vec::new(),
                }),
            }),
        })
    }
}

impl StackPool {
    /// A builder for a pool of stacks with `stack_size` usable bytes each (rounded up to
    /// whole pages), to set limits other than the defaults.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::builder(1 << 20).max_stacks(64).build()?;
    /// assert_eq!(pool.stack_size(), 1 << 20);
    /// # Ok::<(), async_wasm::StackPoolError>(())
    /// ```
    pub fn builder(stack_size: usize) -> StackPoolBuilder {
        StackPoolBuilder {
            stack_size,
            max_idle: StackPoolBuilder::DEFAULT_MAX_IDLE,
            max_stacks: bound::default_max_stacks(),
            keep_resident: 8 << 10,
            decommit_batch: 32,
        }
    }

    /// Makes an empty pool of stacks with `stack_size` usable bytes each (rounded up to
    /// whole pages), with the default limits: see [`StackPoolBuilder`]'s methods.
    ///
    /// The same as [`StackPool::builder`]`(stack_size).build()`, for a size known to be
    /// valid (a constant, as a rule); `build` returns the error instead.
    ///
    /// # Panics
    ///
    /// When `stack_size` is 0 or above [`Stack::MAX_SIZE`].
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::new(1 << 20);
    /// assert_eq!(pool.stack_size(), 1 << 20);
    /// assert!(pool.max_stacks() < usize::MAX);
    /// ```
    #[track_caller]
    pub fn new(stack_size: usize) -> StackPool {
        match StackPool::builder(stack_size).build() {
            Ok(pool) => pool,
            Err(err) => panic!("StackPool::new({stack_size}): {err}"),
        }
    }

    /// Makes `config`'s engine take every async stack from this pool, with this pool's
    /// stack size as its [`async_stack_size`](wasmtime::Config::async_stack_size).
    ///
    /// wasm gets [`max_wasm_stack`](wasmtime::Config::max_wasm_stack) of each stack (512 KiB
    /// by default) and host functions the rest, which [`StackPool::engine`] requires to be
    /// at least [`MIN_HOST_STACK`](crate::MIN_HOST_STACK); `Engine::new` itself only fails
    /// when the pool's stacks are smaller than `max_wasm_stack`.
    ///
    /// A `Config` has no getter for its allocation strategy, so this cannot see whether
    /// `config` uses the pooling allocator, which ignores custom stacks: the pool would be
    /// silently unused. [`StackPool::engine`] checks the engine it makes and reports that
    /// as an error; prefer it.
    ///
    /// With [`Config::async_stack_zeroing(true)`](wasmtime::Config::async_stack_zeroing)
    /// the engine gets stacks that are zero in every byte; without it, a store's first call
    /// runs on a stack that still holds the previous store's frames. See
    /// [`StackPool`] for when to zero.
    ///
    /// # Errors
    ///
    /// [`StackPoolError::Unsupported`] on targets that are not unix; `config` is then left
    /// as it was.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// let pool = async_wasm::StackPool::new(1 << 20);
    /// let mut config = wasmtime::Config::new();
    /// pool.configure(&mut config)?;
    /// let engine = wasmtime::Engine::new(&config)?;
    /// assert_eq!(engine.get_async_stack_size(), 1 << 20);
    /// # }
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn configure(&self, config: &mut wasmtime::Config) -> Result<(), StackPoolError> {
        if !stack::SUPPORTED {
            return Err(StackPoolError::Unsupported);
        }
        config.async_stack_size(self.shared.stack_size);
        config.with_host_stack(Arc::new(PoolStackCreator(self.shared.clone())));
        Ok(())
    }

    /// Makes an engine from `config` with this pool [`configure`](StackPool::configure)d
    /// in, and checks that the engine really draws its stacks from the pool.
    ///
    /// # Errors
    ///
    /// Those of [`configure`](StackPool::configure), as a [`wasmtime::Error`] holding the
    /// [`StackPoolError`]; [`StackPoolError::PoolingAllocator`]
    /// when `config` uses the pooling allocator, which would leave the pool unused;
    /// [`EngineError::HostStackTooSmall`](crate::EngineError::HostStackTooSmall) when the
    /// pool's stacks leave host functions less than [`MIN_HOST_STACK`](crate::MIN_HOST_STACK)
    /// beyond `config`'s [`max_wasm_stack`](wasmtime::Config::max_wasm_stack); and those of
    /// [`Engine::new`](wasmtime::Engine::new), with that error and
    /// [`StackPoolError::MaxWasmStack`] added as context when `max_wasm_stack` does not fit
    /// in the pool's stacks at all.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{EngineError, StackPool, StackPoolError};
    /// use wasmtime::Config;
    ///
    /// # #[cfg(unix)] {
    /// let engine = StackPool::new(1 << 20).engine(&Config::new())?;
    /// # let _ = engine;
    /// let err = StackPool::new(64 * 1024).engine(&Config::new()).unwrap_err();
    /// assert!(matches!(
    ///     err.downcast_ref::<StackPoolError>(),
    ///     Some(StackPoolError::MaxWasmStack { .. })
    /// ));
    /// // 512 KiB for wasm (the default) leaves host functions too little of 640 KiB.
    /// let err = StackPool::new(640 << 10).engine(&Config::new()).unwrap_err();
    /// assert_eq!(
    ///     err.downcast_ref::<EngineError>(),
    ///     Some(&EngineError::HostStackTooSmall { stack_size: 640 << 10, max_wasm_stack: 512 << 10 })
    /// );
    /// # }
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn engine(&self, config: &wasmtime::Config) -> wasmtime::Result<wasmtime::Engine> {
        let mut config = config.clone();
        self.configure(&mut config)?;
        let engine = match wasmtime::Engine::new(&config) {
            Ok(engine) => engine,
            Err(err) => {
                // Only on this error path: if the same config makes an engine with stacks
                // too large for anything to outgrow, the pool's stack size was the cause.
                let stack_size = self.shared.stack_size;
                return Err(match crate::engine::explain_headroom(&config, stack_size) {
                    Some(headroom) => err
                        .context(StackPoolError::MaxWasmStack { stack_size })
                        .context(headroom),
                    None => err,
                });
            }
        };
        if engine.pooling_allocator_metrics().is_some() {
            return Err(StackPoolError::PoolingAllocator.into());
        }
        crate::engine::check_headroom(&engine)?;
        Ok(engine)
    }

    /// Allocates stacks until `n` are idle, or [`max_idle`](StackPool::max_idle) or
    /// [`max_stacks`](StackPool::max_stacks) if lower, so the first stores do not pay for
    /// them.
    ///
    /// # Errors
    ///
    /// Those of [`Stack::new`]; the stacks made before the error stay in the pool.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// let pool = async_wasm::StackPool::new(1 << 16);
    /// pool.prewarm(3)?;
    /// assert_eq!(pool.stats().idle, 3);
    /// # }
    /// # Ok::<(), async_wasm::StackPoolError>(())
    /// ```
    pub fn prewarm(&self, n: usize) -> Result<(), StackPoolError> {
        let n = n.min(self.shared.max_idle).min(self.shared.max_stacks);
        while self.shared.idle.load(Ordering::Relaxed) < n {
            let stack = self.shared.allocate()?;
            self.shared.keep_clean(stack);
        }
        Ok(())
    }

    /// Gives the pool a stack made elsewhere, to be lent like its own: a
    /// [`prewarm`](StackPool::prewarm) by hand. A stack beyond
    /// [`max_idle`](StackPool::max_idle) is unmapped, which is not an error.
    ///
    /// # Errors
    ///
    /// [`StackPoolError::SizeMismatch`] when the stack's [`size`](Stack::size) is not the
    /// pool's [`stack_size`](StackPool::stack_size).
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{Stack, StackPool, StackPoolError};
    ///
    /// # #[cfg(unix)] {
    /// let pool = StackPool::new(1 << 16);
    /// pool.put(Stack::new(1 << 16)?)?;
    /// assert!(matches!(
    ///     pool.put(Stack::new(1 << 17)?),
    ///     Err(StackPoolError::SizeMismatch { expected: 0x1_0000, found: 0x2_0000 })
    /// ));
    /// assert_eq!(pool.stats().idle, 1);
    /// # }
    /// # Ok::<(), StackPoolError>(())
    /// ```
    pub fn put(&self, stack: Stack) -> Result<(), StackPoolError> {
        if stack.size() != self.shared.stack_size {
            return Err(StackPoolError::SizeMismatch {
                expected: self.shared.stack_size,
                found: stack.size(),
            });
        }
        // Nothing has run on a `Stack` outside a pool: it is as zero as when it was made.
        self.shared.keep_clean(stack);
        Ok(())
    }

    /// Gives memory back: unmaps idle stacks until at most `keep_idle` are left, and gives
    /// the pages of those left below [`keep_resident`](StackPool::keep_resident) back to
    /// the operating system (they read as zero when next touched). Returns how many stacks
    /// were unmapped.
    ///
    /// The pool has no thread or clock of its own, so it never does this by itself:
    /// [`max_idle`](StackPoolBuilder::max_idle) bounds what a load spike leaves behind,
    /// and a server that wants more back after the load is gone (the resident pages of
    /// its kept stacks, or every idle stack) calls `trim` when it chooses, from a timer
    /// say. Stacks lent to stores are not touched: they come back to the pool as their
    /// stores are dropped.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// let pool = async_wasm::StackPool::new(1 << 16);
    /// pool.prewarm(8)?;
    /// assert_eq!(pool.trim(2), 6);
    /// assert_eq!(pool.stats().idle, 2);
    /// # }
    /// # Ok::<(), async_wasm::StackPoolError>(())
    /// ```
    pub fn trim(&self, keep_idle: usize) -> usize {
        self.shared.trim(keep_idle)
    }

    /// The usable size of the pool's stacks, in bytes.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(async_wasm::StackPool::new(5000).stack_size() % 4096, 0);
    /// ```
    pub fn stack_size(&self) -> usize {
        self.shared.stack_size
    }

    /// The most idle stacks the pool keeps; see [`StackPoolBuilder::max_idle`].
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(async_wasm::StackPool::new(1 << 20).max_idle(), 256);
    /// ```
    pub fn max_idle(&self) -> usize {
        self.shared.max_idle
    }

    /// The most stacks the pool lends at once; see [`StackPoolBuilder::max_stacks`].
    ///
    /// # Example
    ///
    /// ```
    /// let bound = async_wasm::StackPool::new(1 << 20).max_stacks();
    /// assert!(0 < bound && bound < usize::MAX);
    /// ```
    pub fn max_stacks(&self) -> usize {
        self.shared.max_stacks
    }

    /// The bytes at the top of each stack zeroed by writing; see
    /// [`StackPoolBuilder::keep_resident`].
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(async_wasm::StackPool::new(1 << 20).keep_resident(), 8 << 10);
    /// ```
    pub fn keep_resident(&self) -> usize {
        self.shared.keep_resident
    }

    /// How many stacks are given back to the system together when zeroing; see
    /// [`StackPoolBuilder::decommit_batch`].
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(async_wasm::StackPool::new(1 << 20).decommit_batch(), 32);
    /// ```
    pub fn decommit_batch(&self) -> usize {
        self.shared.decommit_batch
    }

    /// The pool's counters now. Each is read on its own: while other threads lease and
    /// return stacks, they may come from slightly different moments.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = async_wasm::StackPool::new(1 << 20).stats();
    /// assert_eq!(stats.in_use, 0);
    /// ```
    pub fn stats(&self) -> StackPoolStats {
        self.shared.stats()
    }
}

impl core::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.shared.stack_size)
            .field("max_idle", &self.shared.max_idle)
            .field("max_stacks", &self.shared.max_stacks)
            .field("keep_resident", &self.shared.keep_resident)
            .field("decommit_batch", &self.shared.decommit_batch)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Where a lease's stack comes from, decided under the lock (or from the thread's cache) and
/// acted on outside it.
enum Source {
    /// Ready as it is.
    Idle(Stack),
    /// Needs zeroing first.
    Dirty(Stack),
    /// None idle fits: map a new one.
    New,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section only does arithmetic and pushes or pops, which cannot leave
        // the state half-changed: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> StackPoolStats {
        StackPoolStats {
            created: self.created.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            idle: self.idle.load(Ordering::Relaxed),
            in_use: self.in_use.load(Ordering::Relaxed),
        }
    }

    fn allocate(&self) -> Result<Stack, StackPoolError> {
        let stack = Stack::new(self.stack_size)?;
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(stack)
    }

    /// Counts one more stack lent, unless `max_stacks` are.
    fn reserve_lease(&self) -> Result<(), StackPoolError> {
        self.in_use
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_stacks).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| StackPoolError::Exhausted {
                max_stacks: self.max_stacks,
            })
    }

    /// Counts one more idle stack, unless `max_idle` are: then the caller frees it.
    fn reserve_idle(&self) -> bool {
        self.idle
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_idle).then_some(n + 1)
            })
            .is_ok()
    }

    /// Lends a stack, zero in every byte when `zeroed`. Zeroing and allocating happen
    /// outside the lock.
    fn lease(&self, zeroed: bool) -> Result<Stack, StackPoolError> {
        self.reserve_lease()?;
        let source = if zeroed {
            // A stack awaiting decommit is not taken: the pool grows instead, until the
            // batch is full and comes back clean (see `give_back`). Dirty stacks are there
            // only when an engine that does not zero shares the pool.
            let listed = {
                let mut state = self.lock();
                match state.clean.pop() {
                    Some(stack) => Some(Source::Idle(stack)),
                    None => state.dirty.pop().map(Source::Dirty),
                }
            };
            listed
                .or_else(|| self.slots.take_mine().map(Source::Dirty))
                .or_else(|| self.slots.take_any().map(Source::Dirty))
                .unwrap_or(Source::New)
        } else {
            // This thread's own stack first, without the lock. Clean stacks come last: they
            // are kept for zeroing engines sharing the pool. Other threads' slots before a
            // new mapping: no idle stack is kept from a thread that needs one.
            self.slots
                .take_mine()
                .map(Source::Idle)
                .or_else(|| {
                    let mut state = self.lock();
                    let listed = state.dirty.pop().or_else(|| state.awaiting_decommit.pop());
                    listed.or_else(|| state.clean.pop()).map(Source::Idle)
                })
                .or_else(|| self.slots.take_any().map(Source::Idle))
                .unwrap_or(Source::New)
        };
        if !matches!(source, Source::New) {
            self.idle.fetch_sub(1, Ordering::Relaxed);
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        match source {
            Source::Idle(stack) => Ok(stack),
            Source::Dirty(mut stack) => {
                stack.zero(self.keep_resident);
                Ok(stack)
            }
            // A fresh mapping is already zero.
            Source::New => self.allocate().inspect_err(|_| {
                self.in_use.fetch_sub(1, Ordering::Relaxed);
            }),
        }
    }

    /// Takes a stack back from wasmtime; `zeroed` when the engine that leased it zeroes its
    /// stacks, so that the next lease probably wants it zeroed too.
    fn give_back(&self, mut stack: Stack, zeroed: bool) {
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        // Decided before any work on the stack: one past `max_idle` is unmapped as it goes
        // out of scope, unzeroed.
        if !self.reserve_idle() {
            return;
        }
        if !zeroed {
            if let Err(stack) = self.slots.put_mine(stack) {
                self.keep_dirty(stack);
            }
            return;
        }
        stack.zero_top(self.keep_resident);
        if self.keep_resident == self.stack_size {
            // Zeroed by writing, all of it.
            self.lock().clean.push(stack);
            return;
        }
        let mut state = self.lock();
        state.awaiting_decommit.push(stack);
        if state.awaiting_decommit.len() < self.decommit_batch.min(self.max_idle) {
            return;
        }
        // The batch stays counted as idle while it is decommitted outside the lock.
        let mut batch = std::mem::take(&mut state.awaiting_decommit);
        drop(state);
        Stack::decommit_below(&mut batch, self.keep_resident);
        self.lock().clean.append(&mut batch);
    }

    /// Keeps a stack that is zero in every byte, if there is room.
    fn keep_clean(&self, stack: Stack) {
        if self.reserve_idle() {
            self.lock().clean.push(stack);
        }
        // Otherwise `stack` is unmapped as it goes out of scope.
    }

    /// Lists a stack as its last store left it, already counted as idle.
    fn keep_dirty(&self, stack: Stack) {
        self.lock().dirty.push(stack);
    }

    /// See [`StackPool::trim`]. Every idle stack is taken out, those beyond `keep_idle`
    /// unmapped (clean ones are kept first: they have the least resident), and the rest
    /// decommitted below `keep_resident` outside the lock and put back; until then they
    /// are not lent, and a lease meanwhile maps a new stack.
    fn trim(&self, keep_idle: usize) -> usize {
        let (mut clean, mut dirty) = {
            let mut state = self.lock();
            let clean = std::mem::take(&mut state.clean);
            let mut dirty = std::mem::take(&mut state.awaiting_decommit);
            dirty.append(&mut state.dirty);
            (clean, dirty)
        };
        dirty.extend(self.slots.drain());
        let taken = clean.len() + dirty.len();
        clean.truncate(keep_idle);
        dirty.truncate(keep_idle - clean.len());
        let freed = taken - clean.len() - dirty.len();
        self.idle.fetch_sub(freed, Ordering::Relaxed);
        // Decommitting below the top also zeroes, and every dirty stack's top is zeroed
        // by writing: all of them come back clean.
        for stack in &mut dirty {
            stack.zero_top(self.keep_resident);
        }
        Stack::decommit_below(&mut dirty, self.keep_resident);
        let mut state = self.lock();
        state.clean.append(&mut clean);
        state.clean.append(&mut dirty);
        freed
    }
}

#[cfg(all(test, unix))]
mod tests;
