//! Procedural macros for [`async-wasm`](https://docs.rs/async-wasm).
//!
//! Use them through `async_wasm`, which re-exports [`macro@async_host`]; this crate is an
//! implementation detail and its version is pinned by `async-wasm`.
//!
//! - [`macro@async_host`] turns an `async fn` into a host function that async-wasm's
//!   registrations accept as it is.
//! - [`impl_wrap_async!`] generates the 16 arities (0 to 15 wasm parameters) of every
//!   arity-indexed family of the runtime crate. It is only meaningful inside `async-wasm`.

mod arity;
mod async_host;

use proc_macro::TokenStream;

/// Turns an `async fn` into an async host function that async-wasm registers as it is:
/// `linker.func_wrap_host("env", "name", name)`.
///
/// ```
/// use async_wasm::prelude::*;
/// use wasmtime::{Caller, Engine, Linker, Module, Store};
///
/// #[async_host]
/// async fn add(caller: Caller<'_, i32>, x: i32) -> i32 {
///     futures::future::ready(()).await; // a database, a socket, a timer...
///     x + *caller.data()
/// }
///
/// #[async_host]
/// async fn shout(text: String) -> String {
///     text.to_uppercase() // data, copied in and out of the guest's memory
/// }
///
/// let engine = Engine::default();
/// let mut linker = Linker::new(&engine);
/// linker.func_wrap_host("env", "add", add)?;
/// linker.func_wrap_host("env", "shout", shout)?;
/// # let module = Module::new(&engine, r#"(module (import "env" "add" (func $add (param i32) (result i32)))
/// #     (func (export "run") (param i32) (result i32) (call $add (local.get 0))))"#)?;
/// # let mut store = Store::new(&engine, 10);
/// # futures::executor::block_on(async {
/// #     let instance = linker.instantiate_async(&mut store, &module).await?;
/// #     let run = instance.get_func(&mut store, "run").unwrap().get_async().get1::<i32, i32>(&store)?;
/// #     assert_eq!(run.call(&mut store, 1).await?, 11);
/// #     wasmtime::Result::<()>::Ok(())
/// # })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
///
/// # What it makes
///
/// - **Numbers only, a `Caller` first**: a fn of the same name and parameters returning
///   `Box<dyn HostFuture<Output = R> + Send + '_>`, the shape of
///   `Func::wrap_asyncN` / `Linker::func_wrap_asyncN` (N = wasm parameters after the caller).
///   The future may hold the caller across `.await`s, and the fn can still be awaited from
///   Rust: `add(caller, 1).await`.
/// - **Numbers only, no `Caller`**: a fn returning an unboxed `impl Future + 'static`
///   (`Send`: the attribute checks it), for `FuncExt::wrap_async` and `func_wrap_host`.
/// - **With data**: parameters of type `String`, `Vec<u8>` or `Json<T>` (written by those
///   names), or such a result, also inside a `Result`. The fn becomes its wasm-level self: a
///   `Caller` first (added, generic over the store data, when you wrote none), each data
///   parameter a `(ptr: i32, len: i32)` pair, and a `wasmtime::Result<_>` output, an `i64`
///   for a data result. Data parameters are copied out of guest memory and checked before
///   your future starts; a data result is written back through the guest's allocator after
///   it ends. With a data result, the body's caller is a `&mut Caller` (it is used again to
///   write the result). The guest's side is in
///   [`async_wasm::data`](https://docs.rs/async-wasm/latest/async_wasm/data/).
///
/// Returns are whatever wasmtime accepts (values, tuples, `()`, `wasmtime::Result<_>`) and
/// data. wasmtime 48 has its own error type: an `anyhow::Error` converts with
/// `wasmtime::Error::from_anyhow` (wasmtime's `anyhow` feature); errors of your own types
/// convert with `?`.
///
/// # Arguments
///
/// - `local`: the future may hold `!Send` values (`Rc`, `RefCell` borrows) across
///   `.await`s. It is bound to its thread with `LocalFuture`: polled elsewhere it panics,
///   dropped elsewhere it leaks. For single-threaded hosts; see `async_wasm::Local`.
/// - `crate = "path"`: where async-wasm is, when the dependency is renamed
///   (`crate = "my_async_wasm"`), as `#[tokio::main(crate = ..)]` has it.
/// - `memory = "name"`, `realloc = "name"`: the guest's memory and allocator exports, for
///   data (defaults `memory` and `cabi_realloc`).
///
/// A parameter marked `#[caller]` is the `Caller` whatever its type is called, for a type
/// alias (`type Host<'a> = Caller<'a, State>`).
///
/// # Cancellation
///
/// Dropping a call future (a `tokio::time::timeout`, a `select!`) while the guest waits in
/// this fn drops this fn's future at its current `.await`, as for any future. State kept
/// in the store between `.await`s (a connection with a request sent and its reply unread)
/// is then half-updated for the next call. Keep such state consistent at every `.await`, or
/// take it out of the store for the operation and put it back only when it completes (a
/// dropped future then leaves nothing behind), or mark it dirty before and clean after.
///
/// # Compile errors on your own code
///
/// A fn that is not `async`; a `self` receiver; a `Caller` that is not first; more than 15
/// wasm parameters; an `unsafe`, `extern` or variadic fn; a borrowed parameter (`&str`:
/// take `String`); a parameter that is not a wasm value or data; a bound or where clause
/// naming the caller's lifetime (it must stay late-bound); a future that is not `Send`
/// (pointing to `local`); unknown arguments.
#[proc_macro_attribute]
pub fn async_host(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match async_host::expand(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        // The item stays as written next to the error, so the one error is all the user
        // sees: no "cannot find function" or "unused import" in its wake.
        Err(error) => {
            let mut out = error.into_compile_error();
            out.extend(strip_markers(item));
            out.into()
        }
    }
}

/// The item without our `#[caller]` markers, which the compiler would reject on its own.
fn strip_markers(item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let Ok(mut func) = syn::parse2::<syn::ItemFn>(item.clone()) else {
        return item;
    };
    for arg in &mut func.sig.inputs {
        if let syn::FnArg::Typed(arg) = arg {
            arg.attrs.retain(|attr| !attr.path().is_ident("caller"));
        }
    }
    quote::ToTokens::into_token_stream(func)
}

/// Generates one arity-indexed family of async-wasm's API for a range of arities.
///
/// Input: `family: start..=end`, where the family is one of `func_ext` (the
/// `FuncExt::wrap_asyncN` methods), `linker_ext` (`LinkerExt::func_wrap_asyncN`), `getter`
/// (`AsyncGetter::getN`), `typed_call` (`AsyncTypedFunc::call` per parameter tuple),
/// `into_async_func` (the `IntoAsyncFunc` impls behind `FuncExt::wrap_async`) and
/// `into_host_func` (the `IntoHostFunc` impls behind `func_wrap_host`). The code it emits
/// names `crate::` items of async-wasm, so it is only meaningful there.
#[doc(hidden)]
#[proc_macro]
pub fn impl_wrap_async(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as arity::Input);
    arity::expand(&input).into()
}
