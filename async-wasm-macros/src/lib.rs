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

// The documentation is in a file of its own so that async-wasm, whose re-export users
// read, runs its examples as doctests (see `async-wasm/src/lib.rs`). This crate runs none:
// a proc-macro crate's dev-dependencies are built for the host with features of their
// own, so depending on async-wasm here built a second wasmtime and cranelift in every
// `cargo test --workspace`.
#[doc = include_str!("async_host.md")]
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
