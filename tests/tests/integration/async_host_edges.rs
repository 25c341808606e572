//! `#[async_host]` on the edge cases async-trait learned the hard way: `cfg` and lint
//! attributes on parameters, `_` parameters that must live as long as the future, a
//! `Caller` behind a type alias, and the caller-less shape on a `Linker`. (`crate = ".."`
//! is tested in `tests/renamed`, a package where the dependency has another name.)
#![deny(warnings)]

use async_wasm::prelude::*;
use tests::pending;
use wasmtime::{Caller, Engine, Func, Linker, Module, Store};

/// The store data of these guests.
#[derive(Default)]
pub struct State {
    /// Added to every answer.
    pub bias: i32,
}

/// A `Caller` under another name.
pub type Host<'a> = Caller<'a, State>;

mod host {
    use super::*;

    /// A parameter that exists only under a `cfg` that is off: the expansion must not
    /// name it. And one under a `cfg` that is on.
    #[async_host]
    pub async fn cfg_params(
        caller: Caller<'_, State>,
        #[cfg(not(test))] missing: i32,
        #[cfg(test)] x: i32,
    ) -> i32 {
        x + caller.data().bias
    }

    /// Lint attributes on parameters reach the bindings they are about: without them
    /// `deny(warnings)` above rejects the unused and non-snake-case names.
    #[async_host]
    pub async fn linted(
        _caller: Caller<'_, State>,
        #[allow(unused_variables)] unused: i32,
        #[allow(non_snake_case)] X: i32,
    ) -> i32 {
        X
    }

    /// The caller through an alias, marked as such.
    #[async_host]
    pub async fn aliased(#[caller] host: Host<'_>, x: i32) -> i32 {
        pending(1).await;
        x * 10 + host.data().bias
    }

    /// No caller: registered on a `Linker` as it is.
    #[async_host]
    pub async fn now() -> i64 {
        pending(1).await;
        1_700_000_000
    }
}

/// A `_` parameter: it lives as long as the future, as in a plain `async fn` (the
/// macro crate's unit tests check the expansion that keeps it; wasm values have no
/// destructor to observe it by).
#[async_host]
async fn holds_wildcard(_caller: Caller<'_, State>, x: i32, _: i32) -> i32 {
    pending(1).await;
    x
}

const GUEST: &str = r#"(module
    (import "env" "cfg_params" (func $cfg (param i32) (result i32)))
    (import "env" "linted" (func $linted (param i32 i32) (result i32)))
    (import "env" "aliased" (func $aliased (param i32) (result i32)))
    (import "env" "now" (func $now (result i64)))
    (import "env" "holds_wildcard" (func $holds (param i32 i32) (result i32)))
    (func (export "run") (param i32) (result i64)
        (i64.add
            (call $now)
            (i64.extend_i32_s
                (i32.add
                    (i32.add (call $cfg (local.get 0)) (call $linted (i32.const 0) (i32.const 100)))
                    (i32.add (call $aliased (local.get 0)) (call $holds (i32.const 1000) (i32.const 0))))))))"#;

#[tokio::test(flavor = "current_thread")]
async fn every_edge_case_registers_and_runs() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_host("env", "cfg_params", host::cfg_params)?
        .func_wrap_host("env", "linted", host::linted)?
        .func_wrap_host("env", "aliased", host::aliased)?
        .func_wrap_host("env", "now", host::now)?
        .func_wrap_async2("env", "holds_wildcard", holds_wildcard)?;
    let module = Module::new(&engine, GUEST)?;
    let mut store = Store::new(&engine, State { bias: 1 });
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i64>(&store)?;
    // now + (x + 1) + 100 + (10x + 1) + 1000, for x = 2
    assert_eq!(
        run.call(&mut store, 2).await?,
        1_700_000_000 + 3 + 100 + 21 + 1000
    );
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn caller_less_fns_wrap_as_funcs_and_on_linkers_alike() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let mut store = Store::new(&engine, State::default());
    let through_trait: Func = FuncExt::wrap_async(&mut store, host::now);
    let through_host = Func::wrap_host(&mut store, host::now);
    for f in [through_trait, through_host] {
        let now = f.get_async().get0::<i64>(&store)?;
        assert_eq!(now.call(&mut store).await?, 1_700_000_000);
    }
    // A caller-less closure too, on the linker.
    let mut linker = Linker::<State>::new(&engine);
    linker.func_wrap_host("env", "plain", |x: i32| async move { x + 1 })?;
    let plain = linker
        .get(&mut store, "env", "plain")
        .unwrap()
        .into_func()
        .unwrap();
    let plain = plain.get_async().get1::<i32, i32>(&store)?;
    assert_eq!(plain.call(&mut store, 1).await?, 2);
    Ok(())
}
