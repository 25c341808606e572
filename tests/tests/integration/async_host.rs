//! `#[async_host]` at run time: a guest importing a module's worth of plain async fns, with
//! and without a `Caller`, 0 to 15 parameters, `Result` and plain returns, a generic store
//! type, registered through `Func` and through `Linker`, suspending and resuming.

use async_wasm::prelude::*;
use tests::pending;
use wasmtime::{Engine, Func, Instance, Linker, Module, Store};

/// What the guests' store holds.
#[derive(Default)]
pub struct Db {
    base: i64,
    calls: u32,
}

/// Lets the generic host function work on any store data that has a base.
pub trait HasBase {
    /// The base value.
    fn base(&self) -> i64;
}

impl HasBase for Db {
    fn base(&self) -> i64 {
        self.base
    }
}

mod host {
    use super::{Db, HasBase};
    use async_wasm::async_host;
    use tests::pending;
    use wasmtime::Caller;

    /// No wasm parameters; reads the store.
    #[async_host]
    pub async fn base(caller: Caller<'_, Db>) -> i64 {
        pending(1).await;
        caller.data().base
    }

    /// A `Result` return, a `mut` caller kept across awaits.
    #[async_host]
    pub async fn checked_double(mut caller: Caller<'_, Db>, x: i32) -> wasmtime::Result<i32> {
        pending(2).await;
        caller.data_mut().calls += 1;
        pending(1).await;
        if x < 0 {
            wasmtime::bail!("negative input {x}");
        }
        Ok(x * 2)
    }

    /// A store type that is a generic of the fn.
    #[async_host]
    pub async fn scaled<T: HasBase + Send>(caller: Caller<'_, T>, a: i64, b: i64) -> i64 {
        pending(1).await;
        (a + b) * caller.data().base()
    }

    /// A named lifetime, a tuple (multi-value) result, an ignored parameter and a `mut` one.
    #[async_host]
    pub async fn pair<'c>(caller: Caller<'c, Db>, _unused: i32, mut x: i64) -> (i64, i32) {
        x += caller.data().base;
        pending(1).await;
        (x, caller.data().calls as i32)
    }

    /// Fifteen wasm parameters, the most `wrap_async15` takes.
    #[async_host]
    #[allow(clippy::too_many_arguments)]
    pub async fn fifteen(
        _caller: Caller<'_, Db>,
        a1: i32,
        a2: i32,
        a3: i32,
        a4: i32,
        a5: i32,
        a6: i32,
        a7: i32,
        a8: i32,
        a9: i32,
        a10: i32,
        a11: i32,
        a12: i32,
        a13: i32,
        a14: i32,
        a15: i32,
    ) -> i32 {
        pending(1).await;
        [
            a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15,
        ]
        .iter()
        .enumerate()
        .map(|(i, a)| (i as i32 + 1) * a)
        .sum()
    }

    /// Calls another `#[async_host]` fn from Rust, awaiting it directly. (Its own caller is
    /// a `&mut Caller` here, kept for an error value: a fn returning `Result` cannot pass it
    /// on by value.)
    #[async_host]
    pub async fn double_twice(mut caller: Caller<'_, Db>, x: i32) -> wasmtime::Result<i32> {
        caller.data_mut().calls += 1;
        let once = add(x, x).await;
        Ok(once * 2)
    }

    /// Without a caller.
    #[async_host]
    pub async fn add(a: i32, b: i32) -> i32 {
        pending(3).await;
        a + b
    }

    /// Without a caller, nothing in, nothing out.
    #[async_host]
    pub async fn tick() {
        pending(1).await;
    }

    /// Without a caller, a `Result`.
    #[async_host]
    pub async fn parse(x: i64) -> wasmtime::Result<i64> {
        pending(1).await;
        if x == 0 {
            wasmtime::bail!("zero");
        }
        Ok(x)
    }
}

const GUEST: &str = r#"(module
    (import "host" "base" (func $base (result i64)))
    (import "host" "checked_double" (func $checked_double (param i32) (result i32)))
    (import "host" "scaled" (func $scaled (param i64 i64) (result i64)))
    (import "host" "pair" (func $pair (param i32 i64) (result i64 i32)))
    (import "host" "fifteen" (func $fifteen (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32
                                                  i32 i32 i32 i32) (result i32)))
    (import "host" "double_twice" (func $double_twice (param i32) (result i32)))
    (import "host" "add" (func $add (param i32 i32) (result i32)))
    (import "host" "tick" (func $tick))
    (import "host" "parse" (func $parse (param i64) (result i64)))
    (func (export "base") (result i64) (call $base))
    (func (export "checked_double") (param i32) (result i32) (call $checked_double (local.get 0)))
    (func (export "scaled") (param i64 i64) (result i64) (call $scaled (local.get 0) (local.get 1)))
    (func (export "pair") (param i64) (result i64 i32) (call $pair (i32.const 9) (local.get 0)))
    (func (export "fifteen") (result i32)
        (call $fifteen (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4) (i32.const 5)
            (i32.const 6) (i32.const 7) (i32.const 8) (i32.const 9) (i32.const 10)
            (i32.const 11) (i32.const 12) (i32.const 13) (i32.const 14) (i32.const 15)))
    (func (export "double_twice") (param i32) (result i32) (call $double_twice (local.get 0)))
    (func (export "add") (param i32 i32) (result i32)
        (call $tick) (call $add (local.get 0) (local.get 1)))
    (func (export "parse") (param i64) (result i64) (call $parse (local.get 0))))"#;

fn linker(engine: &Engine) -> wasmtime::Result<Linker<Db>> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async0("host", "base", host::base)?
        .func_wrap_async1("host", "checked_double", host::checked_double)?
        .func_wrap_async2("host", "scaled", host::scaled)?
        .func_wrap_async2("host", "pair", host::pair)?
        .func_wrap_async15("host", "fifteen", host::fifteen)?
        .func_wrap_async1("host", "double_twice", host::double_twice)?;
    Ok(linker)
}

/// The same imports as [`linker`], as `Func`s in the guest's import order.
fn funcs(store: &mut Store<Db>) -> Vec<wasmtime::Extern> {
    let funcs: [Func; 9] = [
        Func::wrap_async0(&mut *store, host::base),
        Func::wrap_async1(&mut *store, host::checked_double),
        Func::wrap_async2(&mut *store, host::scaled),
        Func::wrap_async2(&mut *store, host::pair),
        Func::wrap_async15(&mut *store, host::fifteen),
        Func::wrap_async1(&mut *store, host::double_twice),
        FuncExt::wrap_async(&mut *store, host::add),
        FuncExt::wrap_async(&mut *store, host::tick),
        // A `Result` fn takes a `Caller`, added when it has none: `wrap_host` infers it.
        FuncExt::wrap_host(&mut *store, host::parse),
    ];
    funcs.into_iter().map(Into::into).collect()
}

async fn exercise(store: &mut Store<Db>, instance: Instance) -> wasmtime::Result<()> {
    let export = |store: &mut Store<Db>, name: &str| instance.get_func(store, name).unwrap();

    let base = export(store, "base").get_async().get0::<i64>(&*store)?;
    assert_eq!(base.call(&mut *store).await?, 7);

    let double = export(store, "checked_double");
    let double = double.get_async().get1::<i32, i32>(&*store)?;
    assert_eq!(double.call(&mut *store, 21).await?, 42);
    let err = double.call(&mut *store, -1).await.unwrap_err();
    assert!(format!("{err:?}").contains("negative input -1"), "{err:?}");

    let scaled = export(store, "scaled");
    let scaled = scaled.get_async().get2::<i64, i64, i64>(&*store)?;
    assert_eq!(scaled.call(&mut *store, 2, 3).await?, 35);

    let pair = export(store, "pair")
        .get_async()
        .get1::<i64, (i64, i32)>(&*store)?;
    assert_eq!(pair.call(&mut *store, 100).await?, (107, 2));

    let fifteen = export(store, "fifteen").get_async().get0::<i32>(&*store)?;
    assert_eq!(
        fifteen.call(&mut *store).await?,
        (1..=15).map(|i| i * i).sum::<i32>()
    );

    let twice = export(store, "double_twice");
    let twice = twice.get_async().get1::<i32, i32>(&*store)?;
    assert_eq!(twice.call(&mut *store, 5).await?, 20);

    assert_eq!(
        store.data().calls,
        3,
        "checked_double ran twice, double_twice once"
    );
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn async_host_fns_register_through_the_linker() -> wasmtime::Result<()> {
    let pool = StackPool::new(1 << 20);
    let engine = tests::pooled_engine(&pool);
    let module = Module::new(&engine, GUEST)?;
    let mut linker = linker(&engine)?;
    // The caller-less ones through wasmtime's linker, as `Func`s.
    let mut store = Store::new(&engine, Db { base: 7, calls: 0 });
    let extra = funcs(&mut store);
    for (name, func) in ["add", "tick", "parse"].into_iter().zip(&extra[6..]) {
        linker.define(&store, "host", name, func.clone())?;
    }
    let instance = linker.instantiate_async(&mut store, &module).await?;
    exercise(&mut store, instance).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_host_fns_register_as_funcs() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST)?;
    let task = tokio::spawn(async move {
        let mut store = Store::new(&engine, Db { base: 7, calls: 0 });
        let imports = funcs(&mut store);
        let instance = Instance::new_async(&mut store, &module, &imports).await?;
        exercise(&mut store, instance).await?;

        let add = instance.get_func(&mut store, "add").unwrap();
        let add = add.get_async().get2::<i32, i32, i32>(&store)?;
        assert_eq!(add.call(&mut store, 40, 2).await?, 42);
        let parse = instance.get_func(&mut store, "parse").unwrap();
        let parse = parse.get_async().get1::<i64, i64>(&store)?;
        assert_eq!(parse.call(&mut store, 5).await?, 5);
        assert!(parse.call(&mut store, 0).await.is_err());
        wasmtime::Result::<()>::Ok(())
    });
    task.await.unwrap()
}

#[test]
fn async_host_fns_run_on_the_futures_executor() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST)?;
    let mut store = Store::new(&engine, Db { base: 7, calls: 0 });
    let imports = funcs(&mut store);
    futures::executor::block_on(async {
        let instance = Instance::new_async(&mut store, &module, &imports).await?;
        exercise(&mut store, instance).await
    })
}

#[test]
fn caller_less_async_host_fns_are_plain_futures() {
    let (sum, pendings) = tests::poll_counting(host::add(1, 2));
    assert_eq!((sum, pendings), (3, 3));
    let _unused = pending(0);
}
