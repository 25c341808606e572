// The host functions the plugin imports (namespace `extism:host/user`). Each takes and returns
// handles to blocks of Extism memory, as the Rust PDK's `#[host_fn]` passes them, so that one
// host serves both plugins: strings as UTF-8, JSON as its text, numbers as 8 bytes little-endian.
// They live in a file of their own because the exports that call them have the same names.

@external("extism:host/user", "host_echo")
export declare function host_echo(text: u64): u64;
@external("extism:host/user", "lookup")
export declare function lookup(query: u64): u64;
@external("extism:host/user", "kv_set")
export declare function kv_set(key: u64, value: u64): void;
@external("extism:host/user", "kv_get")
export declare function kv_get(key: u64): u64;
@external("extism:host/user", "add")
export declare function add(a: u64, b: u64): u64;
@external("extism:host/user", "host_fail")
export declare function host_fail(text: u64): u64;

// Kernel functions the AssemblyScript PDK (1.0.0) does not declare: the trace level, and the
// HTTP status of the last `http_request`.
@external("extism:host/env", "log_trace")
export declare function log_trace(text: u64): void;
@external("extism:host/env", "http_status_code")
export declare function http_status_code(): i32;
