//! Runs the plugins of `guests/extism` under Extism's own host (the `extism` crate, 1.30.0,
//! on wasmtime 43), for two uses:
//! - `golden`: every export with fixed inputs, config and host functions, its output or
//!   error and return code written to `guests/extism/expected.json`, which async-wasm's own
//!   tests read to check that its host answers the same (without building Extism);
//! - `bench`: Extism's host against async-wasm's (`ours`), in interleaved rounds and in a
//!   concurrency run.
//!
//! This crate is a workspace of its own, outside the repository's: `cargo test --workspace`
//! never builds a second wasmtime.

pub mod cases;
pub mod concurrency;
pub mod host;
pub mod http;
pub mod logs;
pub mod ours;
pub mod plugins;
pub mod rounds;

/// Extism's version, without the NUL that `extism::extism_version` (a C string) ends with.
pub fn extism_version() -> &'static str {
    extism::extism_version().trim_end_matches('\0')
}
