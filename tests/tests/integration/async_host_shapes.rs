//! What `#[async_host]` accepts, run: signatures, each registered the way it is meant to be,
//! and an expansion that names only absolute paths. Any warning in the expansion fails the
//! build. Its error for each misuse is pinned by the trybuild cases in `tests/ui/fail/`.
#![deny(warnings)]

use async_wasm::prelude::*;
use wasmtime::{Caller, Engine, Func, Linker, Store};

/// Docs and attributes are kept.
#[async_host]
#[inline]
pub(crate) async fn elided_caller(caller: Caller<i32>) -> i32 {
    *caller.data()
}

#[async_host]
async fn named<'a>(caller: Caller<'a, i32>, x: i32) -> (i32, i64) {
    (x + *caller.data(), 0)
}

#[async_host]
async fn generic<T: Send + Sync + 'static>(caller: Caller<'_, T>, _: i64) {
    let _ = caller.data();
}

#[async_host]
async fn with_where<T>(mut caller: Caller<'_, T>) -> wasmtime::Result<()>
where
    T: Send + Default,
{
    *caller.data_mut() = T::default();
    Ok(())
}

#[async_host]
async fn early_return(_caller: Caller<'_, i32>, x: i32) -> wasmtime::Result<i32> {
    if x < 0 {
        return Ok(0);
    }
    let parsed: i32 = "12".parse()?;
    Ok(parsed + x)
}

#[async_host]
async fn no_params() -> f64 {
    1.5
}

struct Host;

impl Host {
    #[async_host]
    async fn associated(caller: Caller<'_, i32>) -> i32 {
        *caller.data()
    }
}

#[test]
fn shapes() {
    let engine = Engine::default();
    let mut linker = Linker::<i32>::new(&engine);
    linker
        .func_wrap_async0("m", "elided", elided_caller)
        .unwrap();
    linker.func_wrap_async1("m", "named", named).unwrap();
    linker.func_wrap_async1("m", "generic", generic).unwrap();
    linker.func_wrap_async0("m", "where", with_where).unwrap();
    linker.func_wrap_async1("m", "early", early_return).unwrap();
    linker
        .func_wrap_async0("m", "assoc", Host::associated)
        .unwrap();
    let mut store = Store::new(&engine, 3);
    let f = Func::wrap_async1(&mut store, early_return);
    let g: Func = FuncExt::wrap_async(&mut store, no_params);
    futures::executor::block_on(async {
        let f = f.get_async().get1::<i32, i32>(&store).unwrap();
        assert_eq!(f.call(&mut store, 1).await.unwrap(), 13);
        assert_eq!(f.call(&mut store, -1).await.unwrap(), 0);
        let g = g.get_async().get0::<f64>(&store).unwrap();
        assert_eq!(g.call(&mut store).await.unwrap(), 1.5);
    });
}

/// The expansion names only absolute paths: it compiles in a module without the prelude,
/// next to items that shadow the names it uses.
mod hygiene {
    mod shadowing {
        #![no_implicit_prelude]

        #[allow(dead_code)]
        struct Box;
        #[allow(dead_code)]
        trait Future {}
        #[allow(dead_code)]
        trait Send {}
        #[allow(dead_code)]
        type Result = ();
        #[allow(dead_code)]
        mod async_wasm {}

        #[::async_wasm::async_host]
        pub async fn with_caller(caller: ::wasmtime::Caller<'_, i32>, x: i32) -> i32 {
            x + *caller.data()
        }

        #[::async_wasm::async_host]
        pub async fn without_caller(x: i64) -> i64 {
            x
        }
    }

    #[test]
    fn shadowed_names_and_no_prelude() {
        use async_wasm::prelude::*;
        use wasmtime::{Engine, Func, Store};

        let mut store = Store::new(&Engine::default(), 1);
        let f = Func::wrap_async1(&mut store, shadowing::with_caller);
        let g: Func = FuncExt::wrap_async(&mut store, shadowing::without_caller);
        futures::executor::block_on(async {
            let f = f.get_async().get1::<i32, i32>(&store).unwrap();
            assert_eq!(f.call(&mut store, 2).await.unwrap(), 3);
            let g = g.get_async().get1::<i64, i64>(&store).unwrap();
            assert_eq!(g.call(&mut store, 5).await.unwrap(), 5);
        });
    }
}
