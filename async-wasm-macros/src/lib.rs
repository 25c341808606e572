//! Procedural macros for [`async-wasm`](https://docs.rs/async-wasm).
//!
//! Use them through `async_wasm`, which re-exports [`macro@async_host`]; this crate is an
//! implementation detail and its version is pinned by `async-wasm`.
//!
//! - [`macro@async_host`] turns an `async fn` into something `wrap_asyncN`,
//!   `func_wrap_asyncN` and `FuncExt::wrap_async` accept as it is.
//! - [`impl_wrap_async!`] generates the 16 arities (0 to 15 wasm parameters) of every
//!   arity-indexed family of the runtime crate. It is only meaningful inside `async-wasm`.

mod arity;
mod async_host;

use proc_macro::TokenStream;

/// Rewrites an `async fn` into a wasm import that async-wasm can register directly.
///
/// With a [`Caller`](https://docs.rs/wasmtime/latest/wasmtime/struct.Caller.html) first, the
/// fn keeps its name, visibility, parameters and docs, and returns a boxed `Send` future that
/// may hold the caller across `.await`s, so it fits `Func::wrap_asyncN` and
/// `Linker::func_wrap_asyncN` (N = wasm parameters after the caller) and can still be awaited
/// from Rust. Without a `Caller`, it returns an unboxed `impl Future + Send + 'static` for
/// `FuncExt::wrap_async`.
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Caller, Engine, Func, Store};
///
/// #[async_host]
/// async fn add(caller: Caller<'_, i32>, x: i32) -> i32 {
///     let bias = *caller.data();
///     futures::future::ready(()).await;
///     x + bias
/// }
///
/// #[async_host]
/// async fn double(x: i64) -> i64 {
///     x * 2
/// }
///
/// let mut store = Store::new(&Engine::default(), 10);
/// let add = Func::wrap_async1(&mut store, add);
/// let double: Func = FuncExt::wrap_async(&mut store, double);
/// futures::executor::block_on(async {
///     let v = add.get_async().get1::<i32, i32>(&store)?.call(&mut store, 1).await?;
///     assert_eq!(v, 11);
///     let v = double.get_async().get1::<i64, i64>(&store)?.call(&mut store, 4).await?;
///     assert_eq!(v, 8);
///     wasmtime::Result::<()>::Ok(())
/// })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
///
/// Misuse is a compile error on your own tokens: a fn that is not `async`, a `self`
/// receiver, a `Caller` that is not the first parameter, more than 15 wasm parameters, an
/// `unsafe`, `extern` or variadic fn, or arguments to the attribute.
#[proc_macro_attribute]
pub fn async_host(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match async_host::expand(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        // The item stays as written next to the error, so the one error is all the user
        // sees: no "cannot find function" or "unused import" in its wake.
        Err(error) => {
            let mut out = error.into_compile_error();
            out.extend(item);
            out.into()
        }
    }
}

/// Generates one arity-indexed family of async-wasm's API for a range of arities.
///
/// Input: `family: start..=end`, where the family is one of `func_ext` (the
/// `FuncExt::wrap_asyncN` methods), `linker_ext` (`LinkerExt::func_wrap_asyncN`), `getter`
/// (`AsyncGetter::getN`), `typed_call` (`AsyncTypedFunc::call` per parameter tuple) and
/// `into_async_func` (the `IntoAsyncFunc` impls behind `FuncExt::wrap_async`). The code it
/// emits names `crate::` items of async-wasm, so it is only meaningful there.
#[doc(hidden)]
#[proc_macro]
pub fn impl_wrap_async(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as arity::Input);
    arity::expand(&input).into()
}
