//! [`AsyncGetter`] and [`AsyncTypedFunc`]: type-checked async calls into a [`Func`].

use async_wasm_macros::impl_wrap_async;
use wasmtime::{Func, TypedFunc};

/// Types a [`Func`] for async calls; from [`FuncExt::get_async`](crate::FuncExt::get_async).
///
/// `get0::<R>` .. `get15::<A1, .., A15, R>` check the function's wasm type against the
/// parameter and result types and return an [`AsyncTypedFunc`] whose `call` is async. A
/// signature that does not match is an error.
///
/// # Example
///
/// The `get0` .. `get15` family:
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Engine, Func, Store};
///
/// let mut store = Store::new(&Engine::default(), ());
/// let f = Func::wrap(&mut store, |a: i32, b: i64| a as i64 + b);
/// let getter = f.get_async();
/// assert!(getter.get2::<i32, i32, i64>(&store).is_err()); // not its type
/// let add = getter.get2::<i32, i64, i64>(&store)?;
/// assert_eq!(futures::executor::block_on(add.call(&mut store, 1, 2))?, 3);
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AsyncGetter {
    func: Func,
}

impl AsyncGetter {
    pub(crate) fn new(func: Func) -> Self {
        AsyncGetter { func }
    }

    impl_wrap_async!(getter: 0..=15);
}

/// A [`Func`] checked to take `Params` (a tuple of wasm types) and return `Results`, called
/// asynchronously; from [`AsyncGetter`]'s `getN`.
///
/// Its `call(store, a1, .., an)` takes the arguments one by one and runs the function on a
/// wasmtime fiber. `store` is anything that gives mutable access to the store:
/// `&mut Store<T>`, or `&mut Caller<'_, T>` inside a host function. The future is
/// wasmtime's own [`TypedFunc::call_async`] future: it borrows the handle and is `Send` when
/// the store's data is. Cloning a handle costs a few reference-count updates; clone it into
/// a task that must own it.
///
/// Dropping the future while the guest waits in an async host function cancels the call:
/// the host function's future is dropped at its `.await`, and the store stays usable (see
/// [`#[async_host]`](crate::async_host#cancellation) for keeping host state consistent).
///
/// # Example
///
/// `call` for every arity:
///
/// ```
/// use async_wasm::{prelude::*, AsyncTypedFunc};
/// use wasmtime::{Engine, Func, Store};
///
/// let mut store = Store::new(&Engine::default(), ());
/// let f = Func::wrap(&mut store, |a: i32, b: i32| a - b);
/// let sub: AsyncTypedFunc<(i32, i32), i32> = f.get_async().get2(&store)?;
/// assert_eq!(futures::executor::block_on(sub.call(&mut store, 5, 3))?, 2);
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub struct AsyncTypedFunc<Params, Results> {
    typed: TypedFunc<Params, Results>,
}

impl<Params, Results> AsyncTypedFunc<Params, Results>
where
    Params: wasmtime::WasmParams,
    Results: wasmtime::WasmResults,
{
    pub(crate) fn new(typed: TypedFunc<Params, Results>) -> Self {
        AsyncTypedFunc { typed }
    }

    pub(crate) fn typed(&self) -> &TypedFunc<Params, Results> {
        &self.typed
    }

    /// The untyped function.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Engine, Func, Store};
    ///
    /// let mut store = Store::new(&Engine::default(), ());
    /// let f = Func::wrap(&mut store, || 1_i32);
    /// let typed = f.get_async().get0::<i32>(&store)?;
    /// assert_eq!(typed.func().ty(&store).results().len(), 1);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn func(&self) -> &Func {
        self.typed.func()
    }
}

impl<Params, Results> Clone for AsyncTypedFunc<Params, Results> {
    fn clone(&self) -> Self {
        AsyncTypedFunc {
            typed: self.typed.clone(),
        }
    }
}

impl<Params, Results> core::fmt::Debug for AsyncTypedFunc<Params, Results>
where
    Params: wasmtime::WasmParams,
    Results: wasmtime::WasmResults,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncTypedFunc")
            .field("func", self.func())
            .finish()
    }
}

impl_wrap_async!(typed_call: 0..=15);
