//! Which stores are inside one of the guest's ABI exports (its allocator, its error receiver)
//! called by the host, so that a data host function called from there fails instead of
//! recursing, each level on another fiber stack.
//!
//! wasmtime gives this crate no slot per store; a store's data address is stable and unique
//! while the store lives. An entry exists only while the host's call into the export runs
//! and is removed by a guard (also when that call's future is dropped), so it cannot outlive
//! its store and be found by another store made at the same address.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The stores inside an export now, with the export's name; `INSIDE` counts them, so that
/// the check is one atomic load when none is.
static STORES: Mutex<Vec<(usize, &'static str)>> = Mutex::new(Vec::new());
static INSIDE: AtomicUsize = AtomicUsize::new(0);

fn stores() -> std::sync::MutexGuard<'static, Vec<(usize, &'static str)>> {
    STORES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The export the store whose data is at `store` is inside, if it is.
#[inline]
pub(crate) fn inside(store: usize) -> Option<&'static str> {
    if INSIDE.load(Ordering::Acquire) == 0 {
        return None;
    }
    stores()
        .iter()
        .find(|&&(at, _)| at == store)
        .map(|&(_, name)| name)
}

/// Marks the store as inside `export` until dropped.
pub(crate) struct Guard(usize);

impl Guard {
    pub(crate) fn enter(store: usize, export: &'static str) -> Guard {
        stores().push((store, export));
        INSIDE.fetch_add(1, Ordering::AcqRel);
        Guard(store)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut stores = stores();
        if let Some(at) = stores.iter().rposition(|&(at, _)| at == self.0) {
            stores.swap_remove(at);
        }
        INSIDE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The address that names the store of `caller` here.
#[inline]
pub(crate) fn store_of<D>(caller: &wasmtime::Caller<'_, D>) -> usize {
    (caller.data() as *const D).addr()
}
