//! Bad input from Extism plugins: every handle, address and length is the plugin's to
//! make up. Each case fails that call with a typed error (or gets Extism's own answer),
//! never panics the host, keeps memory bounded, and the next call works.

use async_wasm::AsyncEngine;
use async_wasm::extism::{
    CompiledPlugin, DataSite, ExtismError, HttpError, Limit, Manifest, PluginBuilder, Violation,
};

use crate::extism::plugin;

/// Data: a non-UTF-8 key at 0 (2 bytes), "k" at 2.
fn hostile() -> String {
    plugin(
        r#"(import "extism:host/user" "host_echo" (func $host_echo (param i64) (result i64)))"#,
        "\\ff\\fek",
        r#"
    (func (export "load_never_allocated") (result i32)
        (drop (call $load_u64 (i64.const 4096))) (i32.const 0))
    (func (export "load_freed") (result i32) (local $h i64)
        (local.set $h (call $alloc (i64.const 16)))
        (drop (call $alloc (i64.const 16))) ;; so that the freed block stays inside memory
        (call $free (local.get $h))
        (drop (call $load_u8 (local.get $h))) (i32.const 0))
    (func (export "load_past_block") (result i32) (local $h i64)
        (local.set $h (call $alloc (i64.const 12)))
        (drop (call $alloc (i64.const 16))) ;; the load ends inside the next block
        (drop (call $load_u64 (i64.add (local.get $h) (i64.const 8)))) (i32.const 0))
    (func (export "store_past_memory") (result i32)
        (call $store_u64 (i64.const -16) (i64.const 1)) (i32.const 0))
    (func (export "input_past_end") (result i32)
        (drop (call $input_load_u64 (i64.const 0))) (i32.const 0))
    (func (export "output_not_a_block") (result i32) (local $h i64)
        (local.set $h (call $alloc (i64.const 4)))
        (drop (call $alloc (i64.const 128))) ;; the range ends inside the next block
        (call $output_set (local.get $h) (i64.const 64)) (i32.const 0))
    (func (export "alloc_huge") (result i32)
        (drop (call $alloc (i64.const 0x8000000000000000))) (i32.const 0))
    (func (export "alloc_forever") (result i32)
        (loop $more (drop (call $alloc (i64.const 65536))) (br $more)) (i32.const 0))
    (func (export "var_key_not_utf8") (result i32)
        (call $var_set (call $bytes (i32.const 0) (i32.const 2)) (call $bytes (i32.const 2) (i32.const 1)))
        (i32.const 0))
    (func (export "config_key_not_utf8") (result i32)
        (drop (call $config_get (call $bytes (i32.const 0) (i32.const 2)))) (i32.const 0))
    ;; var "k" = a block of the input's length
    (func (export "var_sized") (result i32) (local $v i64)
        (local.set $v (call $alloc (call $input_length)))
        (call $var_set (call $bytes (i32.const 2) (i32.const 1)) (local.get $v))
        (i32.const 0))
    (func (export "no_output") (result i32) (i32.const 0))
    (func (export "host_fn_made_up_handle") (result i32)
        (drop (call $host_echo (i64.const 123456))) (i32.const 0))
    (func (export "error_not_a_block") (result i32)
        (call $error_set (i64.const 99)) (i32.const 1))
    (func (export "free_made_up") (result i32)
        (call $free (i64.const 777)) (call $free (i64.const 0))
        (call $output_set (call $input) (call $input_length)) (i32.const 0))
    (func (export "length_made_up") (result i32) (local $h i64)
        (local.set $h (call $alloc (i64.const 8)))
        (call $store_u64 (local.get $h) (call $length (i64.const 777)))
        (call $output_set (local.get $h) (i64.const 8)) (i32.const 0))
    (func (export "http") (result i32)
        (drop (call $http_request (call $input) (i64.const 0))) (i32.const 0))"#,
    )
}

fn compiled(max_var_bytes: u64) -> CompiledPlugin {
    let engine = AsyncEngine::builder().max_stores(16).build().unwrap();
    PluginBuilder::new(
        Manifest::new([hostile().into_bytes()])
            .with_memory_max(32)
            .with_max_var_bytes(max_var_bytes),
    )
    .host_fn("host_echo", |text: String| async move { text })
    .build(&engine)
    .unwrap()
}

/// Calls `export` on a fresh instance and on a long-lived one, checks the error, and that
/// both go on working.
fn fails_with(export: &str, input: &str, check: impl Fn(&ExtismError)) {
    let plugin = compiled(1024);
    futures::executor::block_on(async {
        let err = plugin.call::<_, Vec<u8>>(export, input).await.unwrap_err();
        let typed = err
            .downcast_ref::<ExtismError>()
            .unwrap_or_else(|| panic!("{export}: not an ExtismError: {err:?}"));
        check(typed);
        // The first line says what happened (wasmtime's backtrace is further down).
        assert_eq!(err.to_string(), typed.to_string());
        assert_eq!(
            plugin.call::<_, String>("echo", "next").await.unwrap(),
            "next"
        );

        let mut session = plugin.instantiate().await.unwrap();
        assert!(session.call::<_, Vec<u8>>(export, input).await.is_err());
        assert_eq!(
            session.call::<_, String>("echo", "next").await.unwrap(),
            "next"
        );
    });
}

fn kernel(function: &str, violation: Violation) -> impl Fn(&ExtismError) {
    let expected = ExtismError::Kernel {
        function: function.to_owned(),
        violation,
    };
    move |err| assert_eq!(err, &expected)
}

#[test]
fn a_handle_never_allocated() {
    fails_with(
        "load_never_allocated",
        "",
        kernel("load_u64", Violation::OutsideBlock { addr: 4096, len: 8 }),
    );
}

#[test]
fn a_freed_handle() {
    fails_with("load_freed", "", |err| {
        assert!(
            matches!(err, ExtismError::Kernel { function, violation: Violation::OutsideBlock { len: 1, .. } } if function == "load_u8")
        )
    });
}

#[test]
fn a_load_past_a_blocks_end() {
    fails_with("load_past_block", "", |err| {
        assert!(matches!(
            err,
            ExtismError::Kernel {
                violation: Violation::OutsideBlock { len: 8, .. },
                ..
            }
        ))
    });
}

#[test]
fn a_store_past_extism_memory() {
    fails_with(
        "store_past_memory",
        "",
        kernel(
            "store_u64",
            Violation::OutsideBlock {
                addr: u64::MAX - 15,
                len: 8,
            },
        ),
    );
}

#[test]
fn an_input_load_past_the_input() {
    fails_with(
        "input_past_end",
        "short",
        kernel(
            "input_load_u64",
            Violation::OutsideInput {
                offset: 0,
                len: 8,
                input_len: 5,
            },
        ),
    );
}

#[test]
fn output_set_of_a_range_that_is_not_a_block() {
    fails_with("output_not_a_block", "", |err| {
        assert!(matches!(
            err,
            ExtismError::Kernel {
                violation: Violation::RangeNotInBlock { len: 64, .. },
                ..
            }
        ))
    });
}

#[test]
fn an_alloc_of_2_pow_63() {
    fails_with("alloc_huge", "", |err| {
        assert!(
            matches!(err, ExtismError::Limit { limit: Limit::Memory, max, .. } if *max == 32 * 65536)
        )
    });
}

#[test]
fn allocating_forever_stops_at_the_bound() {
    fails_with("alloc_forever", "", |err| {
        assert!(matches!(
            err,
            ExtismError::Limit {
                limit: Limit::Memory,
                ..
            }
        ))
    });
}

#[test]
fn a_var_key_that_is_not_utf8() {
    fails_with(
        "var_key_not_utf8",
        "",
        kernel(
            "var_set",
            Violation::NotUtf8 {
                what: "var key",
                valid_up_to: 0,
            },
        ),
    );
}

#[test]
fn a_config_key_that_is_not_utf8() {
    fails_with(
        "config_key_not_utf8",
        "",
        kernel(
            "config_get",
            Violation::NotUtf8 {
                what: "config key",
                valid_up_to: 0,
            },
        ),
    );
}

#[test]
fn a_var_over_its_limit() {
    fails_with("var_sized", &"x".repeat(2000), |err| {
        assert_eq!(
            err,
            &ExtismError::Limit {
                limit: Limit::Vars,
                requested: 2001,
                max: 1024
            }
        )
    });
    // Within the limit it is kept; 0 disables vars.
    futures::executor::block_on(async {
        let mut session = compiled(1024).instantiate().await.unwrap();
        session
            .call::<_, String>("var_sized", "x".repeat(100))
            .await
            .unwrap();
        assert_eq!(session.var("k").map(<[u8]>::len), Some(100));
        let err = compiled(0)
            .call::<_, String>("var_sized", "x")
            .await
            .unwrap_err();
        assert!(matches!(
            err.downcast_ref(),
            Some(ExtismError::Limit {
                limit: Limit::Vars,
                max: 0,
                ..
            })
        ));
    });
}

#[test]
fn a_plugin_that_never_sets_output() {
    // Extism's answer: empty output. A type that cannot be empty says so.
    let plugin = compiled(1024);
    futures::executor::block_on(async {
        assert_eq!(plugin.call::<_, String>("no_output", "").await.unwrap(), "");
        let err = plugin.call::<_, i64>("no_output", "").await.unwrap_err();
        assert!(matches!(
            err.downcast_ref(),
            Some(ExtismError::Data {
                site: DataSite::Output,
                ..
            })
        ));
    });
}

#[test]
fn a_host_function_called_with_a_made_up_handle() {
    fails_with(
        "host_fn_made_up_handle",
        "",
        kernel("host_echo", Violation::NotABlock { handle: 123456 }),
    );
}

#[test]
fn error_set_of_a_handle_that_is_not_a_block() {
    fails_with(
        "error_not_a_block",
        "",
        kernel("error_set", Violation::NotABlock { handle: 99 }),
    );
}

#[test]
fn free_and_length_of_made_up_handles_get_extisms_answers() {
    let plugin = compiled(1024);
    futures::executor::block_on(async {
        assert_eq!(
            plugin
                .call::<_, String>("free_made_up", "still here")
                .await
                .unwrap(),
            "still here"
        );
        assert_eq!(
            plugin.call::<_, u64>("length_made_up", "").await.unwrap(),
            0
        );
    });
}

#[test]
fn http_is_refused_and_bad_requests_are_typed() {
    // The tests build async-wasm with `http`: the request is checked by the HTTP client, and
    // refused (no `allowed_hosts`) before anything is sent.
    let plugin = compiled(1024);
    futures::executor::block_on(async {
        let url = "http://127.0.0.1:1/";
        let request = format!(r#"{{"url": "{url}"}}"#);
        let err = plugin
            .call::<_, Vec<u8>>("http", request)
            .await
            .unwrap_err();
        match err.downcast_ref::<HttpError>() {
            Some(HttpError::NotAllowed { url: refused }) => assert_eq!(refused, url),
            _ => panic!("{err:?}"),
        }
        let err = plugin
            .call::<_, Vec<u8>>("http", "not json")
            .await
            .unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(HttpError::InvalidRequest { .. })),
            "{err:?}"
        );
        let next: String = plugin.call("echo", "next").await.unwrap();
        assert_eq!(next, "next");
    });
}

/// The same large block passed as both parameters of a host function: the copies of one
/// call together stay within the plugin's memory bound (1 MiB here), and the next call
/// works. Fails without the bound (the host copies the block twice and the call succeeds).
#[test]
fn one_block_passed_as_every_parameter_is_copied_within_the_bound() {
    let wat = plugin(
        r#"(import "extism:host/user" "pair" (func $pair (param i64 i64) (result i64)))"#,
        "",
        r#"
    (func (export "twice") (result i32) (local $h i64)
        (local.set $h (call $alloc (call $input_load_u64 (i64.const 0))))
        (call $out (call $pair (local.get $h) (local.get $h)))
        (i32.const 0))"#,
    );
    let engine = AsyncEngine::builder().max_stores(4).build().unwrap();
    let plugin = PluginBuilder::new(Manifest::new([wat.into_bytes()]).with_memory_max(16))
        .host_fn("pair", |a: Vec<u8>, b: Vec<u8>| async move {
            (a.len() + b.len()) as i64
        })
        .build(&engine)
        .unwrap();
    futures::executor::block_on(async {
        let size = |n: u64| n.to_le_bytes().to_vec();
        let err = plugin
            .call::<_, i64>("twice", size(600_000))
            .await
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<ExtismError>(),
            Some(&ExtismError::Limit {
                limit: Limit::Memory,
                requested: 1_200_000,
                max: 16 * 65536,
            }),
            "{err:?}"
        );
        let both: i64 = plugin.call("twice", size(400_000)).await.unwrap();
        assert_eq!(both, 800_000);
    });
}

/// A manifest's `max_pages` past what a wasm32 memory can have (65,536 pages) bounds
/// memory at 4 GiB: under `max_pages = u32::MAX`, a plugin's `alloc` of 64 TiB fails with
/// `ExtismError::Limit`, and the next call works. Fails without the clamp: the host's
/// allocation for the block fails and aborts the process.
#[test]
fn max_pages_past_a_wasm32_memory_bounds_memory_at_4_gib() {
    let wat = plugin(
        "",
        "",
        r#"
    (func (export "alloc_64_tib") (result i32)
        (drop (call $alloc (i64.const 0x400000000000))) (i32.const 0))"#,
    );
    let engine = AsyncEngine::builder().max_stores(4).build().unwrap();
    let plugin = PluginBuilder::new(Manifest::new([wat.into_bytes()]).with_memory_max(u32::MAX))
        .build(&engine)
        .unwrap();
    futures::executor::block_on(async {
        let err = plugin
            .call::<_, Vec<u8>>("alloc_64_tib", "")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<ExtismError>(),
                Some(ExtismError::Limit {
                    limit: Limit::Memory,
                    max: 0x1_0000_0000,
                    ..
                })
            ),
            "{err:?}"
        );
        let out: String = plugin.call("echo", "next").await.unwrap();
        assert_eq!(out, "next");
    });
}
