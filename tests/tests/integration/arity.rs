//! Every arity, 0 to 15 wasm parameters, through each entry point: `wrap_asyncN`,
//! `func_wrap_asyncN`, `wrap_async` without a caller, and `getN`. Parameter types cycle
//! through i32, i64, f32 and f64, and the host weighs each argument by its position, so a
//! lost or swapped argument shows.

use async_wasm::HostFuture;
use async_wasm::prelude::*;
use tests::{Num, forwarding_guest, pending, pooled_engine, weigh};
use wasmtime::{Caller, Func, Instance, Linker, Module, Store};

macro_rules! arity_test {
    ($name:ident: $wrap:ident, $link:ident, $get:ident; $($a:ident: $t:ty),*) => {
        #[tokio::test(flavor = "current_thread")]
        async fn $name() -> wasmtime::Result<()> {
            let pool = StackPool::new(1 << 20);
            let engine = pooled_engine(&pool);
            let module = Module::new(&engine, forwarding_guest(&[$(<$t as Num>::WASM),*]))?;
            #[allow(unused_mut)] // arity 0 never increments it
            let mut next = 0_i64;
            $(next += 1; let $a = <$t as Num>::from_i64(next * 7 - 3);)*
            let _ = next;
            let expected = weigh(&[$(Num::to_i64($a)),*]);

            // `wrap_asyncN` with a closure, the host pending twice.
            {
            let mut store = Store::new(&engine, 1000_i64);
            let host = Func::$wrap(&mut store, |caller: Caller<'_, i64>, $($a: $t,)*| {
                Box::new(async move {
                    pending(2).await;
                    *caller.data() + weigh(&[$(Num::to_i64($a)),*])
                })
            });
            let instance = Instance::new_async(&mut store, &module, &[host.into()]).await?;
            let run = instance.get_func(&mut store, "run").unwrap();
            let typed = run.get_async().$get::<$($t,)* i64>(&store)?;
            assert_eq!(typed.call(&mut store, $($a),*).await?, 1000 + expected);
            // A wrong result type is an error.
            assert!(run.get_async().$get::<$($t,)* i32>(&store).is_err());
            }

            // `func_wrap_asyncN` with a fn item.
            #[allow(clippy::too_many_arguments)] // one per wasm parameter
            fn host_fn<'a>(
                caller: Caller<'a, i64>,
                $($a: $t,)*
            ) -> Box<dyn HostFuture<Output = i64> + Send + 'a> {
                Box::new(async move {
                    pending(1).await;
                    -*caller.data() + weigh(&[$(Num::to_i64($a)),*])
                })
            }
            {
            let mut linker = Linker::new(&engine);
            linker.$link("env", "host", host_fn)?;
            let mut store = Store::new(&engine, 1_i64);
            let instance = linker.instantiate_async(&mut store, &module).await?;
            let run = instance.get_func(&mut store, "run").unwrap();
            let typed = run.get_async().$get::<$($t,)* i64>(&store)?;
            assert_eq!(typed.call(&mut store, $($a),*).await?, expected - 1);
            }

            // `wrap_async` without a caller, no Box.
            {
            let mut store = Store::new(&engine, ());
            let host: Func = FuncExt::wrap_async(&mut store, |$($a: $t),*| async move {
                pending(1).await;
                weigh(&[$(Num::to_i64($a)),*]) * 2
            });
            let instance = Instance::new_async(&mut store, &module, &[host.into()]).await?;
            let run = instance.get_func(&mut store, "run").unwrap();
            let typed = run.get_async().$get::<$($t,)* i64>(&store)?;
            assert_eq!(typed.call(&mut store, $($a),*).await?, expected * 2);
            }

            // Each store gave its stack back, and the later ones reused the first.
            assert_eq!((pool.stats().in_use, pool.stats().created), (0, 1));
            assert_eq!(pool.stats().in_use, 0);
            Ok(())
        }
    };
}

arity_test!(arity_00: wrap_async0, func_wrap_async0, get0;);
arity_test!(arity_01: wrap_async1, func_wrap_async1, get1; a1: i32);
arity_test!(arity_02: wrap_async2, func_wrap_async2, get2; a1: i32, a2: i64);
arity_test!(arity_03: wrap_async3, func_wrap_async3, get3; a1: i32, a2: i64, a3: f32);
arity_test!(arity_04: wrap_async4, func_wrap_async4, get4; a1: i32, a2: i64, a3: f32, a4: f64);
arity_test!(arity_05: wrap_async5, func_wrap_async5, get5;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32);
arity_test!(arity_06: wrap_async6, func_wrap_async6, get6;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64);
arity_test!(arity_07: wrap_async7, func_wrap_async7, get7;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32);
arity_test!(arity_08: wrap_async8, func_wrap_async8, get8;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64);
arity_test!(arity_09: wrap_async9, func_wrap_async9, get9;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64, a9: i32);
arity_test!(arity_10: wrap_async10, func_wrap_async10, get10;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64, a9: i32,
    a10: i64);
arity_test!(arity_11: wrap_async11, func_wrap_async11, get11;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64, a9: i32,
    a10: i64, a11: f32);
arity_test!(arity_12: wrap_async12, func_wrap_async12, get12;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64, a9: i32,
    a10: i64, a11: f32, a12: f64);
arity_test!(arity_13: wrap_async13, func_wrap_async13, get13;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64, a9: i32,
    a10: i64, a11: f32, a12: f64, a13: i32);
arity_test!(arity_14: wrap_async14, func_wrap_async14, get14;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64, a9: i32,
    a10: i64, a11: f32, a12: f64, a13: i32, a14: i64);
arity_test!(arity_15: wrap_async15, func_wrap_async15, get15;
    a1: i32, a2: i64, a3: f32, a4: f64, a5: i32, a6: i64, a7: f32, a8: f64, a9: i32,
    a10: i64, a11: f32, a12: f64, a13: i32, a14: i64, a15: f32);
