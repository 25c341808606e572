//! [`IntoHostFunc`]: every shape of async host function, for
//! [`LinkerExt::func_wrap_host`](crate::LinkerExt::func_wrap_host) and
//! [`FuncExt::wrap_host`](crate::FuncExt::wrap_host).

use async_wasm_macros::impl_wrap_async;

/// An async host function of any shape this crate takes, with its arity inferred:
///
/// - with a [`Caller`](wasmtime::Caller) first: `for<'a> Fn(Caller<'a, T>, A1, .., An) ->
///   Box<dyn HostFuture<Output = R> + Send + 'a>`, the shape of
///   [`FuncExt::wrap_async1`](crate::FuncExt::wrap_async1) and its siblings, and of every
///   [`#[async_host]`](crate::async_host) fn with a `Caller` or with data parameters or
///   results;
/// - without one: `Fn(A1, .., An) -> Fut` with `Fut: Future<Output = R> + Send + 'static`,
///   the shape of [`FuncExt::wrap_async`](crate::FuncExt::wrap_async) and of a caller-less
///   `#[async_host]` fn.
///
/// `A1..An` (0 to 15) are wasm values and `R` a wasm result; `Marker` tells the shapes
/// apart and is always inferred. This trait is sealed.
///
/// # Example
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Caller, Engine, Linker};
///
/// #[async_host]
/// async fn now_ms() -> i64 {
///     42
/// }
///
/// #[async_host]
/// async fn add(caller: Caller<'_, i64>, a: i64, b: i64) -> i64 {
///     a + b + *caller.data()
/// }
///
/// let mut linker = Linker::new(&Engine::default());
/// linker.func_wrap_host("env", "now_ms", now_ms)?; // no Caller
/// linker.func_wrap_host("env", "add", add)?;       // a Caller and 2 parameters
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub trait IntoHostFunc<T, Marker>: Send + Sync + 'static + sealed::Sealed<T, Marker> {
    #[doc(hidden)]
    fn into_func(self, store: wasmtime::StoreContextMut<'_, T>) -> wasmtime::Func;

    #[doc(hidden)]
    fn define(
        self,
        linker: &mut wasmtime::Linker<T>,
        module: &str,
        name: &str,
    ) -> wasmtime::Result<()>;
}

impl_wrap_async!(into_host_func: 0..=15);

pub(crate) mod sealed {
    /// Keeps [`IntoHostFunc`](super::IntoHostFunc) to the shapes generated here.
    pub trait Sealed<T, Marker> {}
}
