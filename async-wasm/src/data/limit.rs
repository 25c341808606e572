//! The cap on the bytes one host call moves: the engine-wide values
//! [`AsyncEngineBuilder::max_data_len`](crate::AsyncEngineBuilder::max_data_len) registers,
//! and how a host function finds its engine's without a lookup per call.
//!
//! wasmtime gives this crate no slot per engine. The registry maps engines to caps, and is
//! read where a host function is *defined* (the linker or store there knows its engine); the
//! value found is captured by the closure wasmtime calls, which puts it in a thread-local
//! for the synchronous part of each call, where [`CallData`](super::CallData) is made. While
//! no engine has a cap of its own, nothing is captured and a call finds the default without
//! touching the thread-local.
//!
//! The registry holds an [`EngineWeak`] per entry, never an address: a dropped engine's
//! entry no longer upgrades (and is pruned at the next registration), and while the entry
//! exists the engine's allocation cannot be reused by another engine, so an engine made
//! later never finds a cap that was not registered for it.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::{Engine, EngineWeak};

/// The engine-wide caps; `ANY` says whether it ever held one (the lookup's fast path).
static REGISTRY: Mutex<Vec<(EngineWeak, u32)>> = Mutex::new(Vec::new());
static ANY: AtomicBool = AtomicBool::new(false);

/// Makes `max_len` the cap of host functions defined on `engine` from now on.
pub(crate) fn register(engine: &Engine, max_len: u32) {
    let mut registry = REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|(weak, _)| match weak.upgrade() {
        Some(live) => !Engine::same(&live, engine),
        None => false,
    });
    registry.push((engine.weak(), max_len));
    ANY.store(true, Ordering::Release);
}

/// The cap registered for `engine`, or the crate's default.
pub(crate) fn engine_max_len(engine: &Engine) -> u32 {
    if !ANY.load(Ordering::Acquire) {
        return super::GuestAbi::DEFAULT_MAX_LEN;
    }
    let registry = REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry
        .iter()
        .find(|(weak, _)| weak.upgrade().is_some_and(|e| Engine::same(&e, engine)))
        .map_or(super::GuestAbi::DEFAULT_MAX_LEN, |&(_, max_len)| max_len)
}

/// What a host function defined on `engine` holds in [`CURRENT`] during its calls: nothing
/// while no engine has a cap of its own (the common case, which then costs a call nothing:
/// [`CallData`](super::CallData) finds the default through [`engine_max_len`]'s fast path),
/// else `engine`'s cap.
pub(crate) fn for_definition(engine: &Engine) -> Option<u32> {
    ANY.load(Ordering::Acquire).then(|| engine_max_len(engine))
}

thread_local! {
    /// The engine's cap, while the synchronous part of a host function defined through this
    /// crate runs on this thread.
    static CURRENT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Holds the engine's cap in [`CURRENT`] until dropped (also when the host function panics).
pub(crate) struct Scope(Option<u32>);

impl Scope {
    #[inline]
    pub(crate) fn enter(max_len: u32) -> Scope {
        Scope(CURRENT.with(|current| current.replace(Some(max_len))))
    }
}

impl Drop for Scope {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.0));
    }
}

/// The cap of the host function whose synchronous part runs on this thread, when it was
/// defined through this crate.
#[inline]
pub(crate) fn current() -> Option<u32> {
    CURRENT.with(Cell::get)
}
