//! [`LinkerExt`]: async host functions defined on a [`wasmtime::Linker`].

use async_wasm_macros::impl_wrap_async;

use crate::IntoHostFunc;

/// Extension methods for [`wasmtime::Linker`]: define imports from async host functions.
///
/// - [`func_wrap_host`](LinkerExt::func_wrap_host) takes any async host function and infers
///   its arity: an [`#[async_host]`](crate::async_host) fn (with or without a `Caller`,
///   numbers or data), a closure taking a `Caller` and returning a boxed future, or a
///   caller-less closure returning any `Send + 'static` future.
/// - `func_wrap_async0` .. `func_wrap_async15` take a [`Caller`](wasmtime::Caller) and 0 to
///   15 wasm parameters, the callback shape of
///   [`FuncExt::wrap_async1`](crate::FuncExt::wrap_async1) and its siblings.
///
/// wasmtime's own `Linker::func_wrap_async` takes the parameters as one tuple
/// (`|caller, (a, b)|`); these take them one by one (`|caller, a, b|`). A closure of the
/// wrong shape given to wasmtime's reports E0593 inside wasmtime's `func.rs`: call one of
/// these instead.
///
/// This trait is sealed: it is implemented for `Linker<T>` only.
///
/// # Example
///
/// The `func_wrap_async0` .. `func_wrap_async15` family, and `func_wrap_host`:
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
/// linker.func_wrap_async2("env", "add", |caller: Caller<'_, Vec<i64>>, a: i64, b: i64| {
///     Box::new(async move { a + b + caller.data().len() as i64 })
/// })?;
/// linker.func_wrap_host("env", "fetch", fetch)?;
/// let module = Module::new(&engine, r#"(module
///     (import "env" "fetch" (func $fetch (param i32) (result i64)))
///     (import "env" "add" (func $add (param i64 i64) (result i64)))
///     (func (export "run") (param i32) (result i64)
///         (call $add (call $fetch (local.get 0)) (i64.const 1))))"#)?;
/// let mut store = Store::new(&engine, vec![10, 20, 30]);
/// futures::executor::block_on(async {
///     let instance = linker.instantiate_async(&mut store, &module).await?;
///     let run = instance.get_func(&mut store, "run").unwrap();
///     assert_eq!(run.get_async().get1::<i32, i64>(&store)?.call(&mut store, 2).await?, 34);
///     wasmtime::Result::<()>::Ok(())
/// })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[doc(alias = "E0593")]
pub trait LinkerExt<T>: sealed::Sealed<T> {
    /// Defines `module`.`name` as an async host function of any shape, inferring its
    /// arity (see [`IntoHostFunc`]): what [`#[async_host]`](crate::async_host) makes, with
    /// or without a `Caller`, and closures.
    ///
    /// # Errors
    ///
    /// As [`Linker::func_wrap_async`](wasmtime::Linker::func_wrap_async): when the name is
    /// already defined and shadowing is off.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Engine, Linker};
    ///
    /// #[async_host]
    /// async fn now_ms() -> i64 {
    ///     1_700_000_000_000
    /// }
    ///
    /// let mut linker = Linker::<()>::new(&Engine::default());
    /// linker.func_wrap_host("env", "now_ms", now_ms)?;
    /// linker.func_wrap_host("env", "twice", |x: i32| async move { x * 2 })?;
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    fn func_wrap_host<Marker>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoHostFunc<T, Marker>,
    ) -> wasmtime::Result<&mut Self> {
        func.define(self.linker_mut(), module, name)?;
        Ok(self)
    }

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
