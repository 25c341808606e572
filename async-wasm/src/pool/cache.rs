//! One idle stack per pool kept by each thread, so that a store made and dropped on the
//! same thread (a request served on one worker: the common case) leases and returns its
//! stack without taking the pool's lock.
//!
//! With one lock for every lease and every return, two threads serving a store per request
//! on one pool met each other on about 5% of acquisitions, and each such meeting
//! parks a thread in the kernel. A thread's cached stack is counted as idle by the pool
//! (`Shared::idle`), and it is given back to the pool when the thread exits. Only pools
//! whose `max_idle` is unbounded cache (see `Shared::thread_cache`), and only stacks as
//! their last store left them (not zeroed): a zeroing engine needs every byte zero, which
//! the pool's lists keep track of.
//!
//! The thread-local is reached only from wasmtime's calls into the pool (`new_stack`, and
//! the drop of a lent stack), through trait objects, and nothing in the pool switches
//! fibers: no activation that computes its address spans a switch to another thread (the
//! hazard `local::current_thread` guards against).

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::Shared;
use crate::stack::Stack;

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache(Vec::new())) };
}

/// This thread's stacks, one per pool at most.
struct Cache(Vec<Entry>);

struct Entry {
    /// Weak, so that a thread's cache does not keep a dropped pool alive. While it exists
    /// the pool's allocation is not freed, so its address identifies the pool.
    pool: Weak<Shared>,
    stack: Stack,
}

impl Cache {
    /// Drops the stacks of pools that no longer exist (their memory is unmapped here).
    fn prune(&mut self) {
        self.0.retain(|entry| entry.pool.strong_count() > 0);
    }
}

/// Takes this thread's stack of `pool`, if it keeps one.
pub(super) fn take(pool: &Shared) -> Option<Stack> {
    CACHE
        .try_with(|cache| {
            // `try_borrow_mut`: should a pool method ever be reached while the cache is
            // borrowed, it finds the cache busy and uses the lock instead. (Once the
            // thread-local is destroyed, `try_with` itself fails, with the same outcome.)
            let mut cache = cache.try_borrow_mut().ok()?;
            cache.prune();
            let index = cache
                .0
                .iter()
                .position(|entry| core::ptr::eq(entry.pool.as_ptr(), pool))?;
            Some(cache.0.swap_remove(index).stack)
        })
        .ok()
        .flatten()
}

/// Keeps `stack` for `pool` on this thread, unless the thread keeps one already (or is
/// exiting): then it is handed back.
pub(super) fn put(pool: &Arc<Shared>, stack: Stack) -> Result<(), Stack> {
    let mut stack = Some(stack);
    let _ = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return;
        };
        cache.prune();
        if cache
            .0
            .iter()
            .all(|entry| !core::ptr::eq(entry.pool.as_ptr(), Arc::as_ptr(pool)))
        {
            let stack = stack.take().expect("not taken yet");
            cache.0.push(Entry {
                pool: Arc::downgrade(pool),
                stack,
            });
        }
    });
    match stack {
        None => Ok(()),
        Some(stack) => Err(stack),
    }
}

impl Drop for Cache {
    /// At thread exit: each stack goes back to its pool, still counted as idle there.
    fn drop(&mut self) {
        for entry in self.0.drain(..) {
            if let Some(pool) = entry.pool.upgrade() {
                pool.keep_dirty(entry.stack);
            }
        }
    }
}
