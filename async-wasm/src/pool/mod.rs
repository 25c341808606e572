//! [`StackPool`]: stacks lent to wasmtime's fibers and taken back when wasmtime drops them.
//!
//! wasmtime asks its stack creator for a stack the first time a store makes an async call,
//! keeps it cached in the store for the store's next calls, and drops it with the store.
//! Without a pool each of those is an `mmap`, an `mprotect` and a `munmap`: for a service
//! that makes a store per request, most of the request's cost. The pool turns them into a
//! lock, a `Vec::pop` and a `Vec::push`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wasmtime::{StackCreator, StackMemory};

use crate::stack::{Stack, round_to_page};

/// A shared pool of [`Stack`]s that an engine draws every async stack from.
///
/// Cloning gives another handle to the same pool. A stack returns to the pool when wasmtime
/// drops it (its store is dropped, or its cached stack is replaced); the pool keeps up to
/// [`max_idle`](StackPool::max_idle) of them for the next store and frees the rest, and
/// lends at most [`max_stacks`](StackPool::max_stacks) at once.
///
/// # Example
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Config, Engine, Instance, Module, Store};
///
/// let pool = StackPool::new(1 << 20);
/// let mut config = Config::new();
/// pool.configure(&mut config);
/// let engine = Engine::new(&config)?;
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
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Clone)]
pub struct StackPool {
    shared: Arc<Shared>,
}

struct Shared {
    /// The usable size of every stack, page-rounded when valid; an invalid size is kept as it
    /// was asked for so that [`Stack::new`] reports it.
    stack_size: usize,
    /// Everything else, behind one lock: a lease or a return takes it once and touches no
    /// other shared counter (a profile put the separate atomics this replaced at a few
    /// percent of a pooled request).
    state: Mutex<State>,
}

struct State {
    idle: Vec<Stack>,
    max_idle: usize,
    max_stacks: usize,
    in_use: usize,
    created: u64,
    reused: u64,
}

/// A snapshot of a [`StackPool`]'s counters, from [`StackPool::stats`].
///
/// # Example
///
/// ```
/// let pool = async_wasm::StackPool::new(1 << 16);
/// pool.prewarm(2)?;
/// let stats = pool.stats();
/// assert_eq!((stats.created, stats.reused, stats.idle, stats.in_use), (2, 0, 2, 0));
/// # wasmtime::Result::<()>::Ok(())
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
    /// Stacks lent to wasmtime right now (each held by a store).
    pub in_use: usize,
}

impl StackPool {
    /// Makes an empty pool of stacks with `stack_size` usable bytes each (rounded up to
    /// whole pages). Nothing is allocated until a stack is needed or
    /// [`prewarm`](StackPool::prewarm)ed.
    ///
    /// An invalid size (0, or above [`Stack::MAX_SIZE`]) is reported by the first
    /// allocation, and by [`Engine::new`](wasmtime::Engine::new) when it is smaller than
    /// the engine's `max_wasm_stack`.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::new(1 << 20);
    /// assert_eq!(pool.stack_size(), 1 << 20);
    /// ```
    pub fn new(stack_size: usize) -> StackPool {
        let stack_size = if (1..=Stack::MAX_SIZE).contains(&stack_size) {
            round_to_page(stack_size)
        } else {
            stack_size
        };
        StackPool {
            shared: Arc::new(Shared {
                stack_size,
                state: Mutex::new(State {
                    idle: Vec::new(),
                    max_idle: usize::MAX,
                    max_stacks: usize::MAX,
                    in_use: 0,
                    created: 0,
                    reused: 0,
                }),
            }),
        }
    }

    /// Keeps at most `n` idle stacks; stacks given back beyond that are freed. The default
    /// keeps every stack, so the pool grows to the peak number of stores making calls at
    /// once.
    ///
    /// It applies to the pool itself, so every handle sees it; extra idle stacks are freed
    /// at once.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::new(1 << 16).max_idle(1);
    /// pool.prewarm(4)?;
    /// assert_eq!(pool.stats().idle, 1);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn max_idle(self, n: usize) -> StackPool {
        let surplus = {
            let mut state = self.shared.lock();
            state.max_idle = n;
            let keep = state.idle.len().min(n);
            state.idle.split_off(keep)
        };
        // Unmapped outside the lock.
        drop(surplus);
        self
    }

    /// Lends at most `n` stacks at once. Past it, the call or instantiation that needed a
    /// stack fails with an error naming this bound, and every other store goes on. The
    /// default is no bound, where the operating system's limits decide (on Linux each stack
    /// is two of the `vm.max_map_count` mappings, so such a failure may abort the process).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::new(1 << 16).max_stacks(1_000);
    /// # let _ = pool;
    /// ```
    pub fn max_stacks(self, n: usize) -> StackPool {
        self.shared.lock().max_stacks = n;
        self
    }

    /// Makes `config`'s engine take every async stack from this pool, with this pool's
    /// stack size as its [`async_stack_size`](wasmtime::Config::async_stack_size).
    ///
    /// wasm gets [`max_wasm_stack`](wasmtime::Config::max_wasm_stack) of each stack (512 KiB
    /// by default) and host functions the rest, so choose a size comfortably above it:
    /// `Engine::new` fails when the pool's stacks are smaller than `max_wasm_stack`.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::new(1 << 20);
    /// let mut config = wasmtime::Config::new();
    /// pool.configure(&mut config);
    /// let engine = wasmtime::Engine::new(&config)?;
    /// assert_eq!(engine.get_async_stack_size(), 1 << 20);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn configure(&self, config: &mut wasmtime::Config) {
        config.async_stack_size(self.shared.stack_size);
        config.with_host_stack(Arc::new(PoolStackCreator(self.shared.clone())));
    }

    /// Makes an engine from `config` with this pool [`configure`](StackPool::configure)d
    /// in, so that a configuration the pool cannot serve is reported in the pool's terms.
    ///
    /// # Errors
    ///
    /// As [`Engine::new`](wasmtime::Engine::new), with the pool's stack size added to the
    /// error: most often, a pool smaller than the config's `max_wasm_stack`.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::StackPool;
    /// use wasmtime::Config;
    ///
    /// let engine = StackPool::new(1 << 20).engine(&Config::new())?;
    /// # let _ = engine;
    /// let err = StackPool::new(64 * 1024).engine(&Config::new()).unwrap_err();
    /// assert!(format!("{err:?}").contains("Config::max_wasm_stack"), "{err:?}");
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn engine(&self, config: &wasmtime::Config) -> wasmtime::Result<wasmtime::Engine> {
        let mut config = config.clone();
        self.configure(&mut config);
        wasmtime::Engine::new(&config).map_err(|err| {
            err.context(format!(
                "cannot make an engine with a StackPool of {} KiB stacks: wasm's share of each \
                 stack, Config::max_wasm_stack (512 KiB unless set), must fit in it, with room \
                 left for host functions; make the pool with a larger StackPool::new(size), or \
                 lower max_wasm_stack",
                self.shared.stack_size / 1024
            ))
        })
    }

    /// Allocates stacks until `n` are idle, or [`max_idle`](StackPool::max_idle) if it is
    /// lower, so the first stores do not pay for them.
    ///
    /// # Errors
    ///
    /// When a stack cannot be allocated; the stacks made before it stay in the pool.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = async_wasm::StackPool::new(1 << 16);
    /// pool.prewarm(3)?;
    /// assert_eq!(pool.stats().idle, 3);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn prewarm(&self, n: usize) -> wasmtime::Result<()> {
        loop {
            {
                let state = self.shared.lock();
                if state.idle.len() >= n.min(state.max_idle) {
                    return Ok(());
                }
            }
            let stack = self.shared.allocate()?;
            self.shared.keep_or_free(stack, false);
        }
    }

    /// Gives the pool a stack made elsewhere, to be lent like its own.
    ///
    /// # Errors
    ///
    /// When the stack's [`size`](Stack::size) is not the pool's
    /// [`stack_size`](StackPool::stack_size). A stack beyond
    /// [`max_idle`](StackPool::max_idle) is freed, which is not an error.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{Stack, StackPool};
    ///
    /// let pool = StackPool::new(1 << 16);
    /// pool.put(Stack::new(1 << 16)?)?;
    /// assert!(pool.put(Stack::new(1 << 17)?).is_err());
    /// assert_eq!(pool.stats().idle, 1);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn put(&self, stack: Stack) -> wasmtime::Result<()> {
        if stack.size() != self.shared.stack_size {
            wasmtime::bail!(
                "cannot put a stack of {} bytes into a StackPool of {}-byte stacks",
                stack.size(),
                self.shared.stack_size
            );
        }
        self.shared.keep_or_free(stack, false);
        Ok(())
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

    /// The pool's counters now.
    ///
    /// # Example
    ///
    /// ```
    /// let stats = async_wasm::StackPool::new(1 << 20).stats();
    /// assert_eq!(stats.in_use, 0);
    /// ```
    pub fn stats(&self) -> StackPoolStats {
        self.shared.lock().stats()
    }
}

impl core::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("StackPool")
            .field("stack_size", &self.shared.stack_size)
            .field("max_idle", &state.max_idle)
            .field("max_stacks", &state.max_stacks)
            .field("stats", &state.stats())
            .finish()
    }
}

impl State {
    fn stats(&self) -> StackPoolStats {
        StackPoolStats {
            created: self.created,
            reused: self.reused,
            idle: self.idle.len(),
            in_use: self.in_use,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section only does arithmetic and pushes or pops, which cannot leave
        // the state half-changed: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn allocate(&self) -> wasmtime::Result<Stack> {
        let stack = Stack::new(self.stack_size)?;
        self.lock().created += 1;
        Ok(stack)
    }

    /// Lends a stack: an idle one if any (zeroed first when asked), else a new one. Zeroing
    /// and allocating happen outside the lock.
    fn lease(&self, zeroed: bool) -> wasmtime::Result<Stack> {
        let idle = {
            let mut state = self.lock();
            if state.in_use >= state.max_stacks {
                wasmtime::bail!(
                    "the StackPool already lends its max_stacks bound of {} stacks; this call \
                     needs one more (raise StackPool::max_stacks, or admit fewer concurrent \
                     stores)",
                    state.max_stacks
                );
            }
            state.in_use += 1;
            let idle = state.idle.pop();
            state.reused += u64::from(idle.is_some());
            idle
        };
        match idle {
            Some(mut stack) => {
                if zeroed {
                    stack.zero();
                }
                Ok(stack)
            }
            // A fresh mapping is already zero.
            None => self.allocate().inspect_err(|_| self.lock().in_use -= 1),
        }
    }

    /// Takes a stack back (from a lease when `leased`), keeping it if there is room.
    fn keep_or_free(&self, stack: Stack, leased: bool) {
        let mut state = self.lock();
        state.in_use -= usize::from(leased);
        if state.idle.len() < state.max_idle {
            state.idle.push(stack);
        } else {
            // Unmapped outside the lock.
            drop(state);
            drop(stack);
        }
    }
}

/// The pool as wasmtime sees it. A separate type keeps the unsafe `StackCreator` contract
/// out of the public API.
struct PoolStackCreator(Arc<Shared>);

// SAFETY: every stack handed out is a `Stack` owned by the returned `LeasedStack` until
// wasmtime drops it, so no other fiber or guest can use its memory meanwhile; its memory is
// page aligned with a guard page below, as `StackMemory` requires (see `Stack`).
unsafe impl StackCreator for PoolStackCreator {
    fn new_stack(&self, size: usize, zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        // A larger stack than asked is safe (wasm's stack limit is measured from the top);
        // a smaller one is not.
        if size > self.0.stack_size {
            wasmtime::bail!(
                "the engine asks for {size}-byte async stacks but its StackPool has \
                 {}-byte stacks: call StackPool::configure after Config::async_stack_size, \
                 or make the pool with StackPool::new({size})",
                self.0.stack_size
            );
        }
        let stack = self.0.lease(zeroed)?;
        Ok(Box::new(LeasedStack {
            stack: Some(stack),
            pool: self.0.clone(),
        }))
    }
}

/// A stack lent to wasmtime; it goes back to its pool when wasmtime drops it.
struct LeasedStack {
    /// Always `Some` until `drop` takes it.
    stack: Option<Stack>,
    pool: Arc<Shared>,
}

impl LeasedStack {
    fn stack(&self) -> &Stack {
        self.stack
            .as_ref()
            .expect("a leased stack is only taken in drop")
    }
}

impl Drop for LeasedStack {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            self.pool.keep_or_free(stack, true);
        }
    }
}

// SAFETY: the three methods describe the one `Stack` this lease owns, exactly: `top` is the
// end of its usable range, `range` is the usable memory, `guard_range` the page below it.
unsafe impl StackMemory for LeasedStack {
    fn top(&self) -> *mut u8 {
        self.stack().top()
    }

    fn range(&self) -> core::ops::Range<usize> {
        self.stack().range()
    }

    fn guard_range(&self) -> core::ops::Range<*mut u8> {
        self.stack().guard_range()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(stack: &dyn StackMemory) -> &[u8] {
        let range = stack.range();
        // SAFETY: a leased stack's range is readable memory that no fiber is running on.
        unsafe { core::slice::from_raw_parts(range.start as *const u8, range.len()) }
    }

    fn scribble(stack: &dyn StackMemory) {
        let range = stack.range();
        // SAFETY: as above, and it is writable.
        unsafe { core::ptr::write_bytes(range.start as *mut u8, 0x5a, range.len()) };
    }

    #[test]
    fn a_reused_stack_is_zeroed_when_wasmtime_asks() {
        let pool = StackPool::new(1 << 16);
        let creator = PoolStackCreator(pool.shared.clone());
        let first = creator.new_stack(1 << 16, true).unwrap();
        let top = first.top();
        scribble(&*first);
        drop(first);
        let again = creator.new_stack(1 << 16, true).unwrap();
        assert_eq!(again.top(), top, "the same stack is lent again");
        assert!(bytes(&*again).iter().all(|&b| b == 0));
        assert_eq!(pool.stats().reused, 1);
    }

    #[test]
    fn a_reused_stack_is_left_alone_without_zeroing() {
        let pool = StackPool::new(1 << 16);
        let creator = PoolStackCreator(pool.shared.clone());
        let first = creator.new_stack(1 << 16, false).unwrap();
        scribble(&*first);
        drop(first);
        let again = creator.new_stack(1 << 16, false).unwrap();
        assert!(bytes(&*again).iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn leases_are_counted_and_bounded() {
        let pool = StackPool::new(1 << 16).max_stacks(2).max_idle(1);
        let creator = PoolStackCreator(pool.shared.clone());
        let a = creator.new_stack(1 << 16, false).unwrap();
        let b = creator.new_stack(1 << 16, false).unwrap();
        let err = creator.new_stack(1 << 16, false).err().unwrap();
        assert!(err.to_string().contains("max_stacks bound of 2"), "{err}");
        assert_eq!(pool.stats().in_use, 2);
        drop((a, b));
        let stats = pool.stats();
        assert_eq!((stats.in_use, stats.idle, stats.created), (0, 1, 2));
    }

    #[test]
    fn ranges_are_those_of_the_stack() {
        let pool = StackPool::new(1 << 16);
        let leased = PoolStackCreator(pool.shared.clone())
            .new_stack(1 << 16, false)
            .unwrap();
        let range = leased.range();
        assert_eq!(range.end, leased.top() as usize);
        assert_eq!(range.len(), 1 << 16);
        assert_eq!(leased.guard_range().end as usize, range.start);
    }

    #[test]
    fn a_larger_request_than_the_pool_is_an_error() {
        let pool = StackPool::new(1 << 16);
        let err = PoolStackCreator(pool.shared.clone())
            .new_stack(1 << 20, false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("StackPool::configure"), "{err}");
        assert_eq!(pool.stats().in_use, 0);
    }
}
