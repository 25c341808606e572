//! The expansion names only absolute paths: it compiles in a module without the prelude,
//! next to items that shadow the names it uses.
#![deny(warnings)]

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

fn main() {
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
