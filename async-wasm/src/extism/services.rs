//! The host services of `extism:host/env`: config, vars, logs, and HTTP (in `http.rs`
//! with the `http` feature; refused without it). Each takes its key or message from a block the plugin
//! passes, and frees it, as Extism's host does.

use tracing::Level;
use tracing::level_filters::LevelFilter;
use wasmtime::{Caller, Linker};

use super::error::{ExtismError, Violation};
use super::kernel::ENV;
use super::state::PluginState;

type Cx<'a> = Caller<'a, PluginState>;

/// The UTF-8 text of block `handle`, for the `what` of `function`.
fn text(
    state: &PluginState,
    function: &'static str,
    what: &'static str,
    handle: u64,
) -> Result<String, ExtismError> {
    let bytes = state
        .memory
        .block(handle)
        .map_err(|v| ExtismError::kernel(function, v))?;
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(err) => Err(ExtismError::kernel(
            function,
            Violation::NotUtf8 {
                what,
                valid_up_to: err.valid_up_to(),
            },
        )),
    }
}

/// A block holding `value` (the null handle for none).
fn give(state: &mut PluginState, value: Option<Vec<u8>>) -> wasmtime::Result<u64> {
    match value {
        None => Ok(0),
        Some(value) => state
            .memory
            .alloc_bytes(&value)
            .map_err(|err| state.memory_full(err).into()),
    }
}

fn config_get(mut cx: Cx<'_>, key: u64) -> wasmtime::Result<u64> {
    let state = cx.data_mut();
    let name = text(state, "config_get", "config key", key)?;
    state.memory.free(key);
    let value = state
        .shared
        .config
        .get(&name)
        .map(|v| v.as_bytes().to_vec());
    give(state, value)
}

fn var_get(mut cx: Cx<'_>, key: u64) -> wasmtime::Result<u64> {
    let state = cx.data_mut();
    let name = text(state, "var_get", "var key", key)?;
    state.memory.free(key);
    let value = state.vars.get(&name).map(<[u8]>::to_vec);
    give(state, value)
}

fn var_set(mut cx: Cx<'_>, key: u64, value: u64) -> wasmtime::Result<()> {
    let state = cx.data_mut();
    let name = text(state, "var_set", "var key", key)?;
    let max = state.shared.max_var_bytes;
    if value == 0 {
        // The null handle removes the var (an empty value reaches the host as that).
        state.vars.set(&name, None, max)?;
    } else {
        let bytes = state
            .memory
            .block(value)
            .map_err(|v| ExtismError::kernel("var_set", v))?;
        state.vars.set(&name, Some(bytes), max)?;
        state.memory.free(value);
    }
    state.memory.free(key);
    Ok(())
}

/// The level number the PDKs compare with: trace 0 up to error 4.
fn level_number(level: Level) -> i32 {
    match level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

fn get_log_level(_: Cx<'_>) -> i32 {
    match LevelFilter::current().into_level() {
        Some(level) => level_number(level),
        // Logging off: a level above every message's, as Extism's host answers.
        None => i32::MAX,
    }
}

fn log(mut cx: Cx<'_>, level: Level, function: &'static str, message: u64) -> wasmtime::Result<()> {
    let state = cx.data_mut();
    // The handle is checked whether or not the level is on: a plugin's fate must not
    // depend on the host's log settings.
    let bytes = state
        .memory
        .block(message)
        .map_err(|v| ExtismError::kernel(function, v))?;
    if level <= LevelFilter::current() {
        let text = String::from_utf8_lossy(bytes);
        let plugin = state.id;
        match level {
            Level::TRACE => tracing::trace!(plugin, "{text}"),
            Level::DEBUG => tracing::debug!(plugin, "{text}"),
            Level::INFO => tracing::info!(plugin, "{text}"),
            Level::WARN => tracing::warn!(plugin, "{text}"),
            Level::ERROR => tracing::error!(plugin, "{text}"),
        }
    }
    state.memory.free(message);
    Ok(())
}

/// The part of an Extism HTTP request this host reads before refusing it.
#[cfg(not(feature = "http"))]
#[derive(serde::Deserialize)]
struct HttpRequest {
    url: String,
}

#[cfg(not(feature = "http"))]
fn http_request(mut cx: Cx<'_>, request: u64, body: u64) -> wasmtime::Result<u64> {
    let state = cx.data_mut();
    let text = text(state, "http_request", "HTTP request", request)?;
    let request: HttpRequest = serde_json::from_str(&text).map_err(|err| {
        ExtismError::kernel(
            "http_request",
            Violation::Json {
                what: "HTTP request",
                message: err.to_string(),
            },
        )
    })?;
    state
        .memory
        .block(body)
        .map_err(|v| ExtismError::kernel("http_request", v))?;
    Err(ExtismError::HttpNotEnabled { url: request.url }.into())
}

pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.func_wrap(ENV, "config_get", config_get)?;
    linker.func_wrap(ENV, "var_get", var_get)?;
    linker.func_wrap(ENV, "var_set", var_set)?;
    linker.func_wrap(ENV, "get_log_level", get_log_level)?;
    for (function, level) in [
        ("log_trace", Level::TRACE),
        ("log_debug", Level::DEBUG),
        ("log_info", Level::INFO),
        ("log_warn", Level::WARN),
        ("log_error", Level::ERROR),
    ] {
        linker.func_wrap(ENV, function, move |cx: Cx<'_>, m: u64| {
            log(cx, level, function, m)
        })?;
    }
    #[cfg(feature = "http")]
    super::http::add_to_linker(linker)?;
    #[cfg(not(feature = "http"))]
    {
        linker.func_wrap(ENV, "http_request", http_request)?;
        // No request was made: no status, no headers (Extism's answers before a request).
        linker.func_wrap(ENV, "http_status_code", |_: Cx<'_>| 0i32)?;
        linker.func_wrap(ENV, "http_headers", |_: Cx<'_>| 0u64)?;
    }
    Ok(())
}
