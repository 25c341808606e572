//! The Extism kernel's memory functions (`extism:host/env`), implemented on the host.
//!
//! Native host functions rather than a kernel module of our own: the host's side of every
//! call (writing the input, reading the output and error, config and var keys, host
//! function parameters and results) is a checked copy instead of calls into a second
//! instance, and every handle is checked against block metadata the plugin cannot reach,
//! at block granularity (Extism's kernel checks only that an address is inside its
//! memory). The price is on the plugin's side: each 8-byte load or store is a host call,
//! a few times dearer than a wasm-to-wasm call into a kernel instance
//! (`benches/extism_kernel.rs` measures both).

use wasmtime::{Caller, Linker};

use super::error::{ExtismError, Violation};
use super::state::PluginState;

/// The module Extism's PDKs import the kernel and host services from.
pub(crate) const ENV: &str = "extism:host/env";

type Cx<'a> = Caller<'a, PluginState>;

fn broke(function: &'static str) -> impl FnOnce(Violation) -> wasmtime::Error {
    move |violation| ExtismError::kernel(function, violation).into()
}

pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.func_wrap(ENV, "alloc", |mut cx: Cx<'_>, n: u64| {
        let state = cx.data_mut();
        state
            .memory
            .alloc(n)
            .map_err(|err| state.memory_full(err).into())
    })?;
    linker.func_wrap(ENV, "free", |mut cx: Cx<'_>, handle: u64| {
        cx.data_mut().memory.free(handle)
    })?;
    linker.func_wrap(ENV, "length", |cx: Cx<'_>, handle: u64| {
        cx.data().memory.length(handle)
    })?;
    // Host-side blocks make the checked length as cheap as the unchecked one.
    linker.func_wrap(ENV, "length_unsafe", |cx: Cx<'_>, handle: u64| {
        cx.data().memory.length(handle)
    })?;
    linker.func_wrap(ENV, "load_u8", |mut cx: Cx<'_>, addr: u64| {
        cx.data_mut()
            .memory
            .load_u8(addr)
            .map(u32::from)
            .map_err(broke("load_u8"))
    })?;
    linker.func_wrap(ENV, "load_u64", |mut cx: Cx<'_>, addr: u64| {
        cx.data_mut()
            .memory
            .load_u64(addr)
            .map_err(broke("load_u64"))
    })?;
    linker.func_wrap(ENV, "store_u8", |mut cx: Cx<'_>, addr: u64, value: u32| {
        // The import's `u8` travels as an i32: its low byte is the value.
        cx.data_mut()
            .memory
            .store_u8(addr, value as u8)
            .map_err(broke("store_u8"))
    })?;
    linker.func_wrap(ENV, "store_u64", |mut cx: Cx<'_>, addr: u64, value: u64| {
        cx.data_mut()
            .memory
            .store_u64(addr, value)
            .map_err(broke("store_u64"))
    })?;
    linker.func_wrap(ENV, "input_load_u8", |mut cx: Cx<'_>, offset: u64| {
        cx.data_mut()
            .memory
            .input_load_u8(offset)
            .map(u32::from)
            .map_err(broke("input_load_u8"))
    })?;
    linker.func_wrap(ENV, "input_load_u64", |mut cx: Cx<'_>, offset: u64| {
        cx.data_mut()
            .memory
            .input_load_u64(offset)
            .map_err(broke("input_load_u64"))
    })?;
    linker.func_wrap(ENV, "input_length", |cx: Cx<'_>| cx.data().memory.input().1)?;
    linker.func_wrap(ENV, "input_offset", |cx: Cx<'_>| cx.data().memory.input().0)?;
    linker.func_wrap(ENV, "input_set", |mut cx: Cx<'_>, addr: u64, len: u64| {
        cx.data_mut()
            .memory
            .input_set(addr, len)
            .map_err(broke("input_set"))
    })?;
    linker.func_wrap(ENV, "output_set", |mut cx: Cx<'_>, addr: u64, len: u64| {
        cx.data_mut()
            .memory
            .output_set(addr, len)
            .map_err(broke("output_set"))
    })?;
    linker.func_wrap(ENV, "output_length", |cx: Cx<'_>| {
        cx.data().memory.output().1
    })?;
    linker.func_wrap(ENV, "output_offset", |cx: Cx<'_>| {
        cx.data().memory.output().0
    })?;
    linker.func_wrap(ENV, "error_set", |mut cx: Cx<'_>, handle: u64| {
        cx.data_mut()
            .memory
            .error_set(handle)
            .map_err(broke("error_set"))
    })?;
    linker.func_wrap(ENV, "error_get", |cx: Cx<'_>| cx.data().memory.error())?;
    linker.func_wrap(ENV, "reset", |mut cx: Cx<'_>| cx.data_mut().memory.reset())?;
    linker.func_wrap(ENV, "memory_bytes", |cx: Cx<'_>| cx.data().memory.len())?;
    Ok(())
}
