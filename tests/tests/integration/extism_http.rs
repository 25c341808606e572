//! `http_request`, `http_status_code` and `http_headers` (feature `http`) against a
//! loopback server: the real plugins' `http_get` allowed, refused and over the response
//! limit; status and headers; a request bounded by the call's remaining `timeout_ms`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use async_wasm::AsyncEngine;
use async_wasm::data::Json;
use async_wasm::extism::{ExtismError, HttpError, Limit, Manifest, PluginBuilder};

use super::extism_fixtures::{
    Built, Fetched, PLUGINS, build, engine, extism_error, http_server, manifest, plugin_path,
};

#[test]
fn http_allowed_refused_and_too_large() {
    let port = http_server();
    let engine = engine();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (file, wasi) in PLUGINS {
            // Allowed: any status is a response.
            let Built { plugin, .. } = build(&engine, file, wasi, manifest(file));
            let get = |path: &str| {
                let plugin = plugin.clone();
                let url = format!("http://127.0.0.1:{port}{path}");
                async move { plugin.call::<_, Json<Fetched>>("http_get", url).await }
            };
            let out = get("/missing").await.unwrap().0;
            let expected = Fetched {
                status: 404,
                body: "not found".into(),
            };
            assert_eq!(out, expected, "{file}");

            // A host not allowed (`localhost` is not `127.0.0.1`): refused before sending.
            let url = format!("http://localhost:{port}/");
            let err = plugin
                .call::<_, Vec<u8>>("http_get", url.as_str())
                .await
                .unwrap_err();
            match err.downcast_ref::<HttpError>() {
                Some(HttpError::NotAllowed { url: refused }) => assert_eq!(*refused, url),
                _ => panic!("{file}: {err:?}"),
            }
            // What a server logs with `{}` says it, not wasmtime's backtrace.
            assert_eq!(
                err.to_string(),
                format!("HTTP request to {url} is not allowed"),
                "{file}"
            );

            // No allowed hosts at all: every request is refused.
            let bare = Manifest::new([plugin_path(file)]);
            let Built { plugin: bare, .. } = build(&engine, file, wasi, bare);
            let url = format!("http://127.0.0.1:{port}/hello");
            let err = bare.call::<_, Vec<u8>>("http_get", url).await.unwrap_err();
            assert!(
                matches!(err.downcast_ref(), Some(HttpError::NotAllowed { .. })),
                "{file}: {err:?}"
            );

            // A response over `max_http_response_bytes`: typed twice, the limit on top.
            let small = manifest(file).with_max_http_response_bytes(1000);
            let Built { plugin: small, .. } = build(&engine, file, wasi, small);
            let ok = small
                .call::<_, Json<Fetched>>("http_get", format!("http://127.0.0.1:{port}/big/1000"))
                .await
                .unwrap();
            assert_eq!(ok.0.body.len(), 1000, "{file}");
            let err = small
                .call::<_, Vec<u8>>("http_get", format!("http://127.0.0.1:{port}/big/1001"))
                .await
                .unwrap_err();
            assert_eq!(
                extism_error(&err),
                &ExtismError::Limit {
                    limit: Limit::HttpResponse,
                    requested: 1001,
                    max: 1000
                },
                "{file}"
            );
            assert!(
                matches!(
                    err.downcast_ref(),
                    Some(HttpError::TooLarge { limit: 1000, .. })
                ),
                "{file}: {err:?}"
            );
            // And the next call works.
            let out: String = small.call("echo", "next").await.unwrap();
            assert_eq!(out, "next");
        }
    });
}

/// A plugin against the raw ABI: `headers` and `status` send the request their input is (the
/// JSON of Extism's `HttpRequest`), then output `http_headers()`'s block, or
/// `http_status_code()` as 8 bytes.
const HTTP_META: &str = r#"(module
    (import "extism:host/env" "input_offset" (func $input (result i64)))
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "length" (func $length (param i64) (result i64)))
    (import "extism:host/env" "store_u64" (func $store (param i64 i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (import "extism:host/env" "http_request" (func $http (param i64 i64) (result i64)))
    (import "extism:host/env" "http_status_code" (func $status (result i32)))
    (import "extism:host/env" "http_headers" (func $headers (result i64)))
    (func (export "headers") (result i32) (local $h i64)
        (drop (call $http (call $input) (i64.const 0)))
        (local.set $h (call $headers))
        (call $output_set (local.get $h) (call $length (local.get $h)))
        (i32.const 0))
    (func (export "status") (result i32) (local $out i64)
        (drop (call $http (call $input) (i64.const 0)))
        (local.set $out (call $alloc (i64.const 8)))
        (call $store (local.get $out) (i64.extend_i32_u (call $status)))
        (call $output_set (local.get $out) (i64.const 8))
        (i32.const 0)))"#;

#[test]
fn http_status_and_headers() {
    let port = http_server();
    let request = |path: &str| format!(r#"{{"url": "http://127.0.0.1:{port}{path}"}}"#);
    let manifest = Manifest::new([HTTP_META.as_bytes()]).with_allowed_host("127.0.0.1");
    let engine = engine();
    let keeping = PluginBuilder::new(manifest.clone())
        .http_response_headers(true)
        .build(&engine)
        .unwrap();
    let plain = PluginBuilder::new(manifest).build(&engine).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let status: u64 = keeping.call("status", request("/missing")).await.unwrap();
        assert_eq!(status, 404);
        let status: u64 = plain.call("status", request("/hello")).await.unwrap();
        assert_eq!(status, 200);

        // Headers as Extism gives them: a JSON object, names lowercase.
        let Json(headers): Json<BTreeMap<String, String>> =
            keeping.call("headers", request("/hello")).await.unwrap();
        assert_eq!(headers["x-served-by"], "loopback");
        assert_eq!(headers["content-length"], "17");
        // Not kept unless asked for: the null handle, so an empty output.
        let none: Vec<u8> = plain.call("headers", request("/hello")).await.unwrap();
        assert!(none.is_empty());
    });
}

/// A request gets what is left of the call's `timeout_ms`, not the client's default: a
/// server that never answers fails the call with `HttpError::TimedOut` within it.
#[test]
fn http_requests_get_the_calls_remaining_time() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts, reads nothing, answers nothing, until the test ends.
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let manifest = Manifest::new([HTTP_META.as_bytes()])
        .with_allowed_host("127.0.0.1")
        .with_timeout(Duration::from_millis(300));
    let engine = AsyncEngine::builder()
        .yield_every(Duration::from_millis(5))
        .build()
        .unwrap();
    let plugin = PluginBuilder::new(manifest).build(&engine).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let err = rt
        .block_on(plugin.call::<_, u64>("status", format!(r#"{{"url": "{url}"}}"#)))
        .unwrap_err();
    match err.downcast_ref::<HttpError>() {
        Some(HttpError::TimedOut { after, .. }) => {
            assert!(*after <= Duration::from_millis(300), "{after:?}")
        }
        _ => panic!("{err:?}"),
    }
}
