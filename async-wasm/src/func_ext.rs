//! [`FuncExt`]: extension methods on [`wasmtime::Func`] for async host functions and calls.

use core::future::Future;

use async_wasm_macros::impl_wrap_async;
use wasmtime::{AsContextMut, Caller, Func, FuncType, Val};

use crate::{AsyncGetter, HostFuture, IntoAsyncFunc, IntoHostFunc};

/// Extension methods for [`wasmtime::Func`]: async host functions in, async calls out.
///
/// **Which name to call.** wasmtime 48 has inherent `Func::wrap_async`, `Func::new_async`
/// and `Func::call_async`, and inherent methods win: `Func::wrap_async(&mut store, f)` is
/// wasmtime's (its callback takes a `Caller` and a parameter *tuple*, and a mismatch reports
/// E0593 inside wasmtime's `func.rs`). This trait's versions of those three are called
/// through the trait: `FuncExt::wrap_async(&mut store, f)` (with the result's type known,
/// as in `let f: Func = ..`), `FuncExt::new_async(..)`, `FuncExt::call_async(&func, ..)`.
/// The other methods have no such clash: [`Func::wrap_host`](FuncExt::wrap_host) takes any
/// shape, `Func::wrap_async1(..)`, `func.get_async()`.
///
/// - In: [`wrap_host`](FuncExt::wrap_host) takes any async host function and infers its
///   arity; [`wrap_async0`](FuncExt::wrap_async0) .. [`wrap_async15`](FuncExt::wrap_async15)
///   take a [`Caller`] and 0 to 15 wasm parameters; [`wrap_async`](FuncExt::wrap_async)
///   takes any arity without a caller; [`new_async`](FuncExt::new_async) is dynamically
///   typed.
/// - Out: [`get_async`](FuncExt::get_async) then `getN` gives a type-checked handle;
///   [`call_async`](FuncExt::call_async) is dynamically typed.
///
/// Every call into wasm that may reach an async host function must be async
/// (`getN(..)?.call(..)`, [`call_async`](FuncExt::call_async), or wasmtime's own async
/// calls); a synchronous call that reaches one returns an error.
///
/// This trait is sealed: it is implemented for [`Func`] only.
///
/// # Example
///
/// The `wrap_async0` .. `wrap_async15` family: a callback taking a `Caller` and N wasm
/// parameters returns its future boxed, and may hold the caller across `.await`s.
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Caller, Engine, Func, Store};
///
/// let mut store = Store::new(&Engine::default(), 100_i64);
/// let with_caller = Func::wrap_async2(&mut store, |caller: Caller<'_, i64>, a: i64, b: i64| {
///     Box::new(async move {
///         futures::future::ready(()).await; // a database, a socket, a timer...
///         a + b + *caller.data()
///     })
/// });
/// let without: Func = FuncExt::wrap_async(&mut store, |x: i64| async move { x * 2 });
///
/// futures::executor::block_on(async {
///     let sum = with_caller.get_async().get2::<i64, i64, i64>(&store)?;
///     assert_eq!(sum.call(&mut store, 1, 2).await?, 103);
///     let double = without.get_async().get1::<i64, i64>(&store)?;
///     assert_eq!(double.call(&mut store, 21).await?, 42);
///     wasmtime::Result::<()>::Ok(())
/// })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[doc(alias = "E0593")]
pub trait FuncExt: sealed::Sealed {
    /// Makes a dynamically typed async host function of type `ty`, like
    /// [`Func::new`](wasmtime::Func::new) but returning a future. The callback reads the
    /// arguments from the first slice and writes the results into the second.
    ///
    /// # Panics
    ///
    /// When `ty` belongs to another engine than the store's (wasmtime's check).
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Engine, Func, FuncType, Store, Val, ValType};
    ///
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// let ty = FuncType::new(&engine, [ValType::I32], [ValType::I32]);
    /// let f: Func = FuncExt::new_async(&mut store, ty, |_caller, params, results| {
    ///     Box::new(async move {
    ///         results[0] = Val::I32(params[0].unwrap_i32() + 1);
    ///         Ok(())
    ///     })
    /// });
    /// let mut results = [Val::I32(0)];
    /// futures::executor::block_on(FuncExt::call_async(&f, &mut store, &[Val::I32(41)], &mut results))?;
    /// assert_eq!(results[0].unwrap_i32(), 42);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    fn new_async<T, F>(store: impl AsContextMut<Data = T>, ty: FuncType, func: F) -> Self
    where
        F: for<'a> Fn(
                Caller<'a, T>,
                &'a [Val],
                &'a mut [Val],
            )
                -> Box<dyn HostFuture<Output = wasmtime::Result<()>> + Send + 'a>
            + Send
            + Sync
            + 'static,
        T: Send + 'static,
    {
        Self::from_func(Func::new_async(
            store,
            ty,
            move |caller,
                  params,
                  results|
                  -> Box<dyn Future<Output = wasmtime::Result<()>> + Send + '_> {
                func(caller, params, results)
            },
        ))
    }

    /// Wraps an async function that takes no [`Caller`]: any closure or `async fn` with 0 to
    /// 15 wasm parameters whose future is `Send + 'static` (see [`IntoAsyncFunc`]). No `Box`
    /// is needed.
    ///
    /// Call it as `FuncExt::wrap_async(&mut store, f)`, with the result's type known:
    /// `Func::wrap_async` is wasmtime's own method.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Engine, Func, Store};
    ///
    /// let mut store = Store::new(&Engine::default(), ());
    /// let f: Func = FuncExt::wrap_async(&mut store, |a: i32, b: i32| async move { a * b });
    /// let mul = f.get_async().get2::<i32, i32, i32>(&store)?;
    /// assert_eq!(futures::executor::block_on(mul.call(&mut store, 6, 7))?, 42);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    fn wrap_async<T, Params, Results>(
        mut store: impl AsContextMut<Data = T>,
        func: impl IntoAsyncFunc<Params, Results>,
    ) -> Self
    where
        T: Send + 'static,
    {
        Self::from_func(func.into_func(store.as_context_mut()))
    }

    /// Wraps an async host function of any shape, inferring its arity: a callback with a
    /// [`Caller`] and 0 to 15 wasm parameters returning a boxed future (the
    /// `wrap_asyncN` shape), a caller-less callback returning any `Send + 'static` future
    /// (the `wrap_async` shape), and every [`#[async_host]`](crate::async_host) fn, data
    /// ones included. See [`IntoHostFunc`].
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Caller, Engine, Func, Store};
    ///
    /// #[async_host]
    /// async fn scale(caller: Caller<'_, i32>, x: i32) -> i32 {
    ///     x * *caller.data()
    /// }
    ///
    /// let mut store = Store::new(&Engine::default(), 3);
    /// let f = Func::wrap_host(&mut store, scale);
    /// let scale = f.get_async().get1::<i32, i32>(&store)?;
    /// assert_eq!(futures::executor::block_on(scale.call(&mut store, 5))?, 15);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    fn wrap_host<T, Marker>(
        mut store: impl AsContextMut<Data = T>,
        func: impl IntoHostFunc<T, Marker>,
    ) -> Self
    where
        T: Send + 'static,
    {
        Self::from_func(func.into_func(store.as_context_mut()))
    }

    impl_wrap_async!(func_ext: 0..=15);

    /// Calls the function with dynamically typed arguments, writing its results into
    /// `results`, on a wasmtime fiber: the future is pending while a host function is.
    ///
    /// # Errors
    ///
    /// When the arguments or result slots do not match the function's type, on a trap, and
    /// with the error a host function returned.
    ///
    /// # Panics
    ///
    /// When `store` is not the function's store (wasmtime's check).
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Engine, Func, Store, Val};
    ///
    /// let mut store = Store::new(&Engine::default(), ());
    /// let f: Func = FuncExt::wrap_async(&mut store, |x: i32| async move { x + 1 });
    /// let mut results = [Val::I32(0)];
    /// futures::executor::block_on(FuncExt::call_async(&f, &mut store, &[Val::I32(1)], &mut results))?;
    /// assert_eq!(results[0].unwrap_i32(), 2);
    /// // A wrong argument type is an error, not a panic.
    /// let wrong = FuncExt::call_async(&f, &mut store, &[Val::I64(1)], &mut results);
    /// assert!(futures::executor::block_on(wrong).is_err());
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    fn call_async<'a, S>(
        &'a self,
        store: S,
        params: &'a [Val],
        results: &'a mut [Val],
    ) -> impl Future<Output = wasmtime::Result<()>> + Send + 'a
    where
        S: AsContextMut + Send + 'a,
        S::Data: Send,
    {
        self.as_func().call_async(store, params, results)
    }

    /// Starts a typed async call: `func.get_async().getN::<A1, .., An, R>(&store)` checks the
    /// signature and returns a handle whose `call` is async. See [`AsyncGetter`].
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Engine, Func, Store};
    ///
    /// let mut store = Store::new(&Engine::default(), ());
    /// let f = Func::wrap(&mut store, |x: i32| x * 3);
    /// let triple = f.get_async().get1::<i32, i32>(&store)?;
    /// assert_eq!(futures::executor::block_on(triple.call(&mut store, 5))?, 15);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    fn get_async(&self) -> AsyncGetter {
        AsyncGetter::new(*self.as_func())
    }
}

impl FuncExt for Func {}

pub(crate) mod sealed {
    use wasmtime::Func;

    /// Keeps [`FuncExt`](super::FuncExt) for `Func` only, and gives its provided methods
    /// the conversions they need.
    pub trait Sealed: Sized {
        fn from_func(func: Func) -> Self;
        fn as_func(&self) -> &Func;
    }

    impl Sealed for Func {
        fn from_func(func: Func) -> Self {
            func
        }

        fn as_func(&self) -> &Func {
            self
        }
    }
}
