//! A long-lived [`Plugin`](super::Plugin) keeps the exports it has called, found and
//! type-checked once per instance: a call that leaves the instance stale must not reach the
//! fresh instance through an export of the old one.

use super::{CompiledPlugin, ExtismError, Manifest};
use crate::AsyncEngine;

const WAT: &str = r#"(module
    (import "extism:host/env" "input_offset" (func $input (result i64)))
    (import "extism:host/env" "input_length" (func $input_length (result i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (memory 1)
    (func (export "echo") (result i32)
        (call $output_set (call $input) (call $input_length))
        (i32.const 0))
    ;; counts its calls in linear memory: 1 on a fresh instance
    (func (export "count") (result i32)
        (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
        (i32.load (i32.const 0)))
    (func (export "trap") (result i32) unreachable)
    (func (export "wrong_type") (param i32)))"#;

fn compiled() -> CompiledPlugin {
    let engine = AsyncEngine::builder().max_stores(4).build().unwrap();
    CompiledPlugin::builder(Manifest::new([WAT.as_bytes()]))
        .build(&engine)
        .unwrap()
}

#[test]
fn exports_found_before_a_failed_call_are_found_again_on_the_fresh_instance() {
    let compiled = compiled();
    futures::executor::block_on(async {
        let mut plugin = compiled.instantiate().await.unwrap();
        assert_eq!(plugin.call::<_, String>("echo", "a").await.unwrap(), "a");
        // A non-zero code is a normal return: the instance (and its count) is kept.
        let code = |err: wasmtime::Error| match err.downcast_ref::<ExtismError>() {
            Some(ExtismError::Plugin { code, .. }) => *code,
            _ => panic!("not the plugin's code: {err:?}"),
        };
        assert_eq!(
            code(plugin.call::<_, ()>("count", "").await.unwrap_err()),
            1
        );
        assert_eq!(
            code(plugin.call::<_, ()>("count", "").await.unwrap_err()),
            2
        );

        let trap = plugin.call::<_, ()>("trap", "").await.unwrap_err();
        assert!(trap.downcast_ref::<wasmtime::Trap>().is_some(), "{trap:?}");

        // The next calls run on a fresh instance, with its own exports.
        assert_eq!(plugin.call::<_, String>("echo", "b").await.unwrap(), "b");
        assert_eq!(
            code(plugin.call::<_, ()>("count", "").await.unwrap_err()),
            1
        );
    });
}

#[test]
fn a_missing_or_mistyped_export_is_not_kept() {
    let compiled = compiled();
    futures::executor::block_on(async {
        let mut plugin = compiled.instantiate().await.unwrap();
        for _ in 0..2 {
            let err = plugin.call::<_, ()>("missing", "").await.unwrap_err();
            assert!(
                matches!(err.downcast_ref(), Some(ExtismError::MissingExport { name }) if name == "missing")
            );
            let err = plugin.call::<_, ()>("wrong_type", "").await.unwrap_err();
            assert!(
                matches!(err.downcast_ref(), Some(ExtismError::ExportType { name, .. }) if name == "wrong_type")
            );
        }
        assert_eq!(plugin.call::<_, String>("echo", "c").await.unwrap(), "c");
    });
}
