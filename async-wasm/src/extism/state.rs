//! What a plugin's store holds: Extism memory, vars, and the plugin's shared settings; and
//! the one budget Extism memory and the plugin's linear memory share.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::{ExtismError, Limit};
use super::memory::{AllocError, ExtismMemory};

/// What every instance of one compiled plugin shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Arc<BTreeMap<String, String>>,
    /// Extism memory plus linear memory, in bytes.
    pub max_memory_bytes: u64,
    pub max_var_bytes: u64,
    pub timeout: Option<Duration>,
    #[cfg(feature = "wasi")]
    pub wasi: Option<super::wasi::WasiOptions>,
    /// `allowed_hosts` and `max_http_response_bytes`.
    #[cfg(feature = "http")]
    pub http: crate::http_client::HttpPolicy,
    /// Keep each response's headers for `http_headers`.
    #[cfg(feature = "http")]
    pub http_response_headers: bool,
}

/// The data of a plugin's store.
pub(crate) struct PluginState {
    pub memory: ExtismMemory,
    pub vars: Vars,
    pub shared: Arc<Shared>,
    pub id: u64,
    /// Bytes of linear memory the plugin's instance holds.
    linear_bytes: u64,
    /// The user host function whose own error is ending the current call.
    pub failed_host_fn: Option<Arc<str>>,
    /// When the current call's `timeout_ms` runs out, if the manifest sets one.
    pub deadline: Option<Instant>,
    /// The last HTTP response's status and headers.
    #[cfg(feature = "http")]
    pub http: super::http::HttpState,
    #[cfg(feature = "wasi")]
    pub wasi: Option<wasmtime_wasi::p1::WasiP1Ctx>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl PluginState {
    pub(crate) fn new(shared: Arc<Shared>) -> PluginState {
        PluginState {
            memory: ExtismMemory::new(shared.max_memory_bytes),
            vars: Vars::default(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            linear_bytes: 0,
            failed_host_fn: None,
            deadline: None,
            #[cfg(feature = "http")]
            http: super::http::HttpState::new(shared.http_response_headers),
            #[cfg(feature = "wasi")]
            wasi: shared.wasi.as_ref().map(|options| options.context()),
            shared,
        }
    }

    /// The error for Extism memory that is full.
    pub(crate) fn memory_full(&self, err: AllocError) -> ExtismError {
        let requested = err.requested.saturating_add(err.in_use);
        self.over_memory(requested.saturating_add(self.linear_bytes))
    }

    /// The error for `requested` bytes past the plugin's memory bound (`max_pages`).
    pub(crate) fn over_memory(&self, requested: u64) -> ExtismError {
        ExtismError::Limit {
            limit: Limit::Memory,
            requested,
            max: self.shared.max_memory_bytes,
        }
    }
}

impl wasmtime::ResourceLimiter for PluginState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let linear = self.linear_bytes + (desired.saturating_sub(current)) as u64;
        let total = linear.saturating_add(self.memory.charged());
        let max = self.shared.max_memory_bytes;
        if total > max {
            // An error, not `Ok(false)`: the plugin's allocator would turn a failed
            // `memory.grow` into an abort that says nothing.
            return Err(self.over_memory(total).into());
        }
        self.linear_bytes = linear;
        self.memory.set_max_bytes(max - linear);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the engine (the pooling allocator's table size); a plugin
        // without a maximum gets a generous one rather than none.
        Ok(desired <= maximum.unwrap_or(1 << 20))
    }
}

/// A plugin's vars: bytes by key, kept across the calls of one [`Plugin`](super::Plugin).
#[derive(Debug, Default, Clone)]
pub(crate) struct Vars {
    map: BTreeMap<String, Vec<u8>>,
    /// Keys and values, in bytes.
    bytes: u64,
}

impl Vars {
    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// Sets `key` to `value`, or removes it for `None`, within `max` bytes of keys and
    /// values together.
    pub(crate) fn set(
        &mut self,
        key: &str,
        value: Option<&[u8]>,
        max: u64,
    ) -> Result<(), ExtismError> {
        let old = self
            .map
            .get(key)
            .map_or(0, |v| (key.len() + v.len()) as u64);
        let Some(value) = value else {
            self.map.remove(key);
            self.bytes -= old;
            return Ok(());
        };
        let new = (key.len() + value.len()) as u64;
        let total = self.bytes - old + new;
        if total > max {
            return Err(ExtismError::Limit {
                limit: Limit::Vars,
                requested: total,
                max,
            });
        }
        self.map.insert(key.to_owned(), value.to_vec());
        self.bytes = total;
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
