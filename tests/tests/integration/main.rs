//! The integration tests, one module per concern, in one binary: each test binary links all
//! of wasmtime and cranelift, and one instead of eighteen saves most of a fresh build's
//! test-linking time. `guard.rs` and `ticker.rs` stay binaries of their own: one re-runs
//! itself as a child process, the other counts the threads of its process.

mod acquire;
mod arity;
mod async_host;
mod async_host_edges;
mod async_host_results;
mod async_host_shapes;
mod c_guests;
mod callback;
mod cancel;
mod data;
mod data_bounds;
mod data_fuzz;
mod engine;
mod errors;
mod executors;
mod extism;
mod extism_conformance;
mod extism_fixtures;
mod extism_fuzz;
mod extism_guests;
mod extism_hostile;
mod extism_http;
mod extism_plugins;
mod headroom;
mod local;
mod pool;
mod scale;
mod schedules;
mod suspension;
mod wasi;
mod yielding;
