//! `http_request`, `http_status_code` and `http_headers` for real (feature `http`): the
//! plugin's request goes through the crate's HTTP client, under the manifest's
//! `allowed_hosts` and `max_http_response_bytes` and what is left of the call's
//! `timeout_ms`, and each case is answered as Extism's host answers it.

use std::time::Instant;

use wasmtime::{Caller, Linker};

use super::error::ExtismError;
use super::kernel::ENV;
use super::state::PluginState;
use crate::http_client::{self, HttpPolicy};

/// What the last request of a call left for `http_status_code` and `http_headers`.
#[derive(Debug, Default)]
pub(crate) struct HttpState {
    /// The last response's status; 0 before any, and while a request is under way.
    pub status: u16,
    /// The last response's headers as `http_headers` gives them (a JSON object), kept
    /// only when the plugin was built with
    /// [`http_response_headers`](super::PluginBuilder::http_response_headers).
    pub headers: Option<String>,
}

impl HttpState {
    pub(crate) fn new(keep_headers: bool) -> HttpState {
        HttpState {
            status: 0,
            headers: keep_headers.then(no_headers),
        }
    }
}

/// What `http_headers` answers before a response: an empty object.
fn no_headers() -> String {
    String::from("{}")
}

/// The bytes of block `handle`, for `http_request`.
fn block(state: &PluginState, handle: u64) -> Result<Vec<u8>, ExtismError> {
    state
        .memory
        .block(handle)
        .map(<[u8]>::to_vec)
        .map_err(|v| ExtismError::kernel("http_request", v))
}

/// `http_request(request, body) -> response`: the JSON request and the body (0 for none)
/// are copied out and freed before the request is made, so that nothing of Extism memory
/// is held across the `.await`; the response's body comes back in a new block (0 when it
/// is empty, as Extism's `alloc(0)`).
async fn http_request(
    mut cx: Caller<'_, PluginState>,
    request: u64,
    body: u64,
) -> wasmtime::Result<u64> {
    let state = cx.data_mut();
    // Extism clears what the last request left before it looks at this one.
    state.http.status = 0;
    if let Some(headers) = &mut state.http.headers {
        *headers = no_headers();
    }
    let json = block(state, request)?;
    state.memory.free(request);
    let body = match body {
        0 => None,
        handle => {
            let bytes = block(state, handle)?;
            state.memory.free(handle);
            Some(bytes)
        }
    };
    let request = http_client::parse_request(&json, body)?;
    let remaining = state
        .deadline
        .map(|deadline| deadline.saturating_duration_since(Instant::now()));
    let policy = state.shared.http.for_call(remaining);
    let response = http_client::request(request, &policy).await?;

    let state = cx.data_mut();
    state.http.status = response.status;
    if let Some(headers) = &mut state.http.headers {
        *headers = response.headers_json();
    }
    state
        .memory
        .alloc_bytes(&response.body)
        .map_err(|err| state.memory_full(err).into())
}

/// `http_headers() -> handle`: the last response's headers as a JSON object, or the null
/// handle when the plugin was not built to keep them (Extism's answer too).
fn http_headers(mut cx: Caller<'_, PluginState>) -> wasmtime::Result<u64> {
    let state = cx.data_mut();
    let Some(headers) = &state.http.headers else {
        return Ok(0);
    };
    let json = headers.clone();
    state
        .memory
        .alloc_bytes(json.as_bytes())
        .map_err(|err| state.memory_full(err).into())
}

/// The policy every instance of a plugin shares, from its manifest.
pub(crate) fn policy(manifest: &super::Manifest) -> HttpPolicy {
    HttpPolicy::new(
        manifest.allowed_hosts.as_deref(),
        manifest.memory.max_http_response_bytes,
    )
}

pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        ENV,
        "http_request",
        |cx: Caller<'_, PluginState>, (request, body): (u64, u64)| {
            Box::new(http_request(cx, request, body))
        },
    )?;
    linker.func_wrap(ENV, "http_status_code", |cx: Caller<'_, PluginState>| {
        i32::from(cx.data().http.status)
    })?;
    linker.func_wrap(ENV, "http_headers", http_headers)?;
    Ok(())
}
