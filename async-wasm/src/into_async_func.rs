//! [`IntoAsyncFunc`]: the closures and `async fn`s [`FuncExt::wrap_async`] accepts.
//!
//! [`FuncExt::wrap_async`]: crate::FuncExt::wrap_async

use async_wasm_macros::impl_wrap_async;

/// An async function without a [`Caller`](wasmtime::Caller) that can become a wasm import:
/// any `Fn(A1, .., An) -> Fut` with 0 to 15 [`WasmTy`](wasmtime::WasmTy) parameters, where
/// `Fut: Future<Output = R> + Send + 'static` and `R` is a [`WasmRet`](wasmtime::WasmRet).
///
/// Plain `async move` closures and `async fn` items qualify, without a `Box`. `Params` is
/// the tuple of parameter types and `Results` the output, both inferred. This trait is
/// sealed.
///
/// # Example
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Engine, Func, Store};
///
/// async fn add(a: i32, b: i32) -> i32 {
///     a + b
/// }
///
/// let mut store = Store::new(&Engine::default(), ());
/// let f: Func = FuncExt::wrap_async(&mut store, add);
/// let sum = f.get_async().get2::<i32, i32, i32>(&store)?;
/// assert_eq!(futures::executor::block_on(sum.call(&mut store, 2, 3))?, 5);
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub trait IntoAsyncFunc<Params, Results>:
    Send + Sync + 'static + sealed::Sealed<Params, Results>
{
    #[doc(hidden)]
    fn into_func<T: Send + 'static>(
        self,
        store: wasmtime::StoreContextMut<'_, T>,
    ) -> wasmtime::Func;
}

impl_wrap_async!(into_async_func: 0..=15);

pub(crate) mod sealed {
    /// Keeps [`IntoAsyncFunc`](super::IntoAsyncFunc) to the shapes generated here.
    pub trait Sealed<Params, Results> {}
}
