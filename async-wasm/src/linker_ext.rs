//! [`LinkerExt`]: `wrap_asyncN`-shaped definitions on a [`wasmtime::Linker`].

use async_wasm_macros::impl_wrap_async;

/// Extension methods for [`wasmtime::Linker`]: `func_wrap_async0` .. `func_wrap_async15`
/// define an import from an async host function taking a [`Caller`](wasmtime::Caller) and
/// 0 to 15 wasm parameters, the callback shape of
/// [`FuncExt::wrap_async1`](crate::FuncExt::wrap_async1) and its siblings, so an
/// [`#[async_host]`](crate::async_host) fn registers in one line.
///
/// This trait is sealed: it is implemented for `Linker<T>` only.
///
/// # Example
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Caller, Engine, Linker, Module, Store};
///
/// #[async_host]
/// async fn fetch(caller: Caller<'_, Vec<i64>>, key: i32) -> i64 {
///     futures::future::ready(()).await; // a database, a socket, a timer...
///     caller.data()[key as usize]
/// }
///
/// let engine = Engine::default();
/// let mut linker = Linker::new(&engine);
/// linker.func_wrap_async1("env", "fetch", fetch)?;
/// let module = Module::new(&engine, r#"(module
///     (import "env" "fetch" (func $fetch (param i32) (result i64)))
///     (func (export "run") (param i32) (result i64) (call $fetch (local.get 0))))"#)?;
/// let mut store = Store::new(&engine, vec![10, 20, 30]);
/// futures::executor::block_on(async {
///     let instance = linker.instantiate_async(&mut store, &module).await?;
///     let run = instance.get_func(&mut store, "run").unwrap();
///     assert_eq!(run.get_async().get1::<i32, i64>(&store)?.call(&mut store, 2).await?, 30);
///     wasmtime::Result::<()>::Ok(())
/// })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub trait LinkerExt<T>: sealed::Sealed<T> {
    impl_wrap_async!(linker_ext: 0..=15);
}

impl<T> LinkerExt<T> for wasmtime::Linker<T> {}

pub(crate) mod sealed {
    use wasmtime::Linker;

    /// Keeps [`LinkerExt`](super::LinkerExt) for `Linker<T>` only, and gives its provided
    /// methods the linker.
    pub trait Sealed<T> {
        fn linker_mut(&mut self) -> &mut Linker<T>;
    }

    impl<T> Sealed<T> for Linker<T> {
        fn linker_mut(&mut self) -> &mut Linker<T> {
            self
        }
    }
}
