//! Compiled modules shared by the plugins built from the same bytes on the same engine:
//! a server that builds a plugin per tenant (each with its own config, allowed hosts and
//! host functions) compiles the wasm once, not once per tenant.
//!
//! The cache holds only weak references: a module lives as long as a plugin built from it,
//! and is compiled again once none is left.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use sha2::Digest as _;
use wasmtime::{Engine, Module};

struct Entry {
    sha256: [u8; 32],
    module: Weak<Module>,
}

static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// `bytes` compiled for `engine`: the module a live plugin already has, or a new one.
pub(crate) fn module(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Arc<Module>> {
    let sha256: [u8; 32] = sha2::Sha256::digest(bytes).into();
    {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|entry| entry.module.strong_count() > 0);
        let found = cache
            .iter()
            .filter(|entry| entry.sha256 == sha256)
            .filter_map(|entry| entry.module.upgrade())
            .find(|module| Engine::same(module.engine(), engine));
        if let Some(module) = found {
            return Ok(module);
        }
    }
    // Compiled outside the lock: other builds go on meanwhile (two builds of the same new
    // bytes at once may both compile; both modules work).
    let module = Arc::new(Module::new(engine, bytes)?);
    CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Entry {
            sha256,
            module: Arc::downgrade(&module),
        });
    Ok(module)
}
