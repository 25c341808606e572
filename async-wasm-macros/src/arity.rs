//! `impl_wrap_async!(family: start..=end)`: one expansion function per arity-indexed family.
//!
//! Every family is the same shape repeated for 0..=15 wasm parameters; writing them by hand
//! would be 80 near-identical items. Each generated method carries its own doc example, built
//! for its arity so that the example runs as a doctest.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{LitInt, Token};

/// The largest arity wasmtime's typed API supports for our shapes: the Caller plus 15 wasm
/// parameters is what `wrap_async15` takes.
const MAX_ARITY: usize = 15;

pub struct Input {
    family: Family,
    arities: std::ops::RangeInclusive<usize>,
}

#[derive(Clone, Copy)]
enum Family {
    FuncExt,
    LinkerExt,
    Getter,
    TypedCall,
    IntoAsyncFunc,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        let family = match name.to_string().as_str() {
            "func_ext" => Family::FuncExt,
            "linker_ext" => Family::LinkerExt,
            "getter" => Family::Getter,
            "typed_call" => Family::TypedCall,
            "into_async_func" => Family::IntoAsyncFunc,
            _ => {
                return Err(syn::Error::new_spanned(
                    name,
                    "unknown family: expected one of `func_ext`, `linker_ext`, `getter`, \
                     `typed_call`, `into_async_func`",
                ));
            }
        };
        input.parse::<Token![:]>()?;
        let start: LitInt = input.parse()?;
        input.parse::<Token![..=]>()?;
        let end: LitInt = input.parse()?;
        let (lo, hi) = (start.base10_parse::<usize>()?, end.base10_parse::<usize>()?);
        if lo > hi || hi > MAX_ARITY {
            return Err(syn::Error::new(
                end.span(),
                format!("arities must form a range within 0..={MAX_ARITY}"),
            ));
        }
        Ok(Input {
            family,
            arities: lo..=hi,
        })
    }
}

pub fn expand(input: &Input) -> TokenStream {
    input
        .arities
        .clone()
        .map(|n| {
            let arity = Arity::new(n);
            match input.family {
                Family::FuncExt => func_ext(&arity),
                Family::LinkerExt => linker_ext(&arity),
                Family::Getter => getter(&arity),
                Family::TypedCall => typed_call(&arity),
                Family::IntoAsyncFunc => into_async_func(&arity),
            }
        })
        .collect()
}

/// The identifiers shared by every family for one arity: type parameters `A1..An` and value
/// names `a1..an`.
struct Arity {
    n: usize,
    tys: Vec<Ident>,
    args: Vec<Ident>,
}

impl Arity {
    fn new(n: usize) -> Self {
        Arity {
            n,
            tys: (1..=n).map(|i| format_ident!("A{}", i)).collect(),
            args: (1..=n).map(|i| format_ident!("a{}", i)).collect(),
        }
    }

    fn method(&self, base: &str) -> Ident {
        Ident::new(&format!("{base}{}", self.n), Span::call_site())
    }

    /// `i32, i32, i32` for the doc examples' turbofish: n parameters, then the result.
    fn example_types(&self) -> String {
        vec!["i32"; self.n + 1].join(", ")
    }

    /// `a1: i32, a2: i32` for the doc examples' closures.
    fn example_params(&self) -> String {
        (1..=self.n).map(|i| format!(", a{i}: i32")).collect()
    }

    /// `1, 2, 3` for the doc examples' calls.
    fn example_args(&self) -> String {
        (1..=self.n).map(|i| format!(", {i}")).collect()
    }

    /// `a1 + a2 + ...`, the sum the example host functions compute.
    fn example_sum(&self) -> String {
        (1..=self.n).map(|i| format!(" + a{i}")).collect()
    }

    /// What the examples' sum returns for arguments 1..=n.
    fn example_expected(&self) -> usize {
        self.n * (self.n + 1) / 2
    }
}

fn doc_lines(text: &str) -> TokenStream {
    text.lines().map(|line| quote!(#[doc = #line])).collect()
}

/// The bounds of a `wrap_asyncN`-shaped callback `F` (a `Caller`, then N wasm parameters,
/// returning a boxed host future), shared by `FuncExt` and `LinkerExt`.
fn host_callback_bounds(a: &Arity) -> TokenStream {
    let tys = &a.tys;
    quote! {
        F: for<'a> ::core::ops::Fn(
                ::wasmtime::Caller<'a, T>,
                #(#tys),*
            ) -> ::std::boxed::Box<
                dyn crate::HostFuture<Output = R> + ::core::marker::Send + 'a,
            > + ::core::marker::Send
            + ::core::marker::Sync
            + 'static,
        #(#tys: ::wasmtime::WasmTy,)*
        R: ::wasmtime::WasmRet,
        T: ::core::marker::Send + 'static,
    }
}

/// The closure handed to wasmtime's `wrap_async` / `func_wrap_async`: it takes wasmtime's
/// parameter tuple, calls `func` with the parameters spread out, and upcasts the
/// `Box<dyn HostFuture>` to the `Box<dyn Future>` wasmtime wants (no allocation).
fn forwarding_closure(a: &Arity) -> TokenStream {
    let Arity { tys, args, .. } = a;
    quote! {
        move |caller: ::wasmtime::Caller<'_, T>, (#(#args,)*): (#(#tys,)*)|
              -> ::std::boxed::Box<
            dyn ::core::future::Future<Output = R> + ::core::marker::Send + '_,
        > { func(caller, #(#args),*) }
    }
}

fn func_ext(a: &Arity) -> TokenStream {
    let Arity { n, tys, .. } = a;
    let (bounds, forward) = (host_callback_bounds(a), forwarding_closure(a));
    let name = a.method("wrap_async");
    let (types, params, call_args, sum, expected) = (
        a.example_types(),
        a.example_params(),
        a.example_args(),
        a.example_sum(),
        a.example_expected() + 100,
    );
    let doc = doc_lines(&format!(
        "Wraps an async host function taking a [`Caller`](wasmtime::Caller) and {n} wasm \
         parameter(s).

The callback returns a boxed future (`Box::new(async move {{ .. }})`, or an
[`#[async_host]`](crate::async_host) fn) that may hold the caller across `.await`s. While it
is pending the guest is suspended and the task awaiting the call sees `Poll::Pending`.

# Example

```
use async_wasm::prelude::*;
use wasmtime::{{Caller, Engine, Func, Store}};

let mut store = Store::new(&Engine::default(), 100_i32);
let f = Func::{name}(&mut store, |caller: Caller<'_, i32>{params}| {{
    Box::new(async move {{ *caller.data(){sum} }})
}});
let typed = f.get_async().get{n}::<{types}>(&store)?;
let v = futures::executor::block_on(typed.call(&mut store{call_args}))?;
assert_eq!(v, {expected});
# wasmtime::Result::<()>::Ok(())
```"
    ));
    quote! {
        #doc
        fn #name<T, #(#tys,)* R, F>(
            store: impl ::wasmtime::AsContextMut<Data = T>,
            func: F,
        ) -> Self
        where
            #bounds
        {
            <Self as crate::func_ext::sealed::Sealed>::from_func(::wasmtime::Func::wrap_async(
                store,
                #forward,
            ))
        }
    }
}

fn linker_ext(a: &Arity) -> TokenStream {
    let Arity { n, tys, .. } = a;
    let (bounds, forward) = (host_callback_bounds(a), forwarding_closure(a));
    let name = a.method("func_wrap_async");
    let (types, params, call_args, sum, expected) = (
        a.example_types(),
        a.example_params(),
        a.example_args(),
        a.example_sum(),
        a.example_expected() + 100,
    );
    let doc = doc_lines(&format!(
        "Defines `module`.`name` as an async host function taking a
[`Caller`](wasmtime::Caller) and {n} wasm parameter(s): the callback shape of
[`FuncExt::wrap_async{n}`](crate::FuncExt::wrap_async{n}).

Errors as [`Linker::func_wrap_async`](wasmtime::Linker::func_wrap_async) does, for
instance when the name is already defined and shadowing is off.

# Example

```
use async_wasm::prelude::*;
use wasmtime::{{Caller, Engine, Linker, Store}};

let engine = Engine::default();
let mut linker = Linker::new(&engine);
linker.{name}(\"env\", \"f\", |caller: Caller<'_, i32>{params}| {{
    Box::new(async move {{ *caller.data(){sum} }})
}})?;
let mut store = Store::new(&engine, 100_i32);
let f = linker.get(&mut store, \"env\", \"f\").unwrap().into_func().unwrap();
let typed = f.get_async().get{n}::<{types}>(&store)?;
let v = futures::executor::block_on(typed.call(&mut store{call_args}))?;
assert_eq!(v, {expected});
# wasmtime::Result::<()>::Ok(())
```"
    ));
    quote! {
        #doc
        fn #name<#(#tys,)* R, F>(
            &mut self,
            module: &str,
            name: &str,
            func: F,
        ) -> ::wasmtime::Result<&mut Self>
        where
            #bounds
        {
            crate::linker_ext::sealed::Sealed::linker_mut(self).func_wrap_async(
                module,
                name,
                #forward,
            )?;
            ::core::result::Result::Ok(self)
        }
    }
}

/// The shared example of `getN` and `call`: a synchronous host function of n parameters,
/// typed and called asynchronously.
fn typed_example(a: &Arity) -> String {
    let n = a.n;
    let (types, params, call_args, sum, expected) = (
        a.example_types(),
        a.example_params(),
        a.example_args(),
        a.example_sum(),
        a.example_expected(),
    );
    let params = params.trim_start_matches(", ");
    format!(
        "```
use async_wasm::prelude::*;
use wasmtime::{{Engine, Func, Store}};

let mut store = Store::new(&Engine::default(), ());
let f = Func::wrap(&mut store, |{params}| 0{sum});
let typed = f.get_async().get{n}::<{types}>(&store)?;
let v = futures::executor::block_on(typed.call(&mut store{call_args}))?;
assert_eq!(v, {expected});
// A signature that does not match the function's wasm type is an error.
assert!(f.get_async().get{n}::<{wrong}>(&store).is_err());
# wasmtime::Result::<()>::Ok(())
```",
        wrong = a.example_types().replacen("i32", "f64", 1),
    )
}

fn getter(a: &Arity) -> TokenStream {
    let Arity { n, tys, .. } = a;
    let name = a.method("get");
    let doc = doc_lines(&format!(
        "Types the function as taking {n} wasm parameter(s) and returning `R`, for async
calls.

Errors when the function's wasm type is not `({n} parameters) -> R`, or when it does not
belong to `store`.

# Example

{}",
        typed_example(a)
    ));
    quote! {
        #doc
        pub fn #name<#(#tys,)* R>(
            &self,
            store: impl ::wasmtime::AsContext,
        ) -> ::wasmtime::Result<crate::AsyncTypedFunc<(#(#tys,)*), R>>
        where
            #(#tys: ::wasmtime::WasmTy,)*
            R: ::wasmtime::WasmResults,
        {
            let typed = self.func.typed::<(#(#tys,)*), R>(store)?;
            ::core::result::Result::Ok(crate::AsyncTypedFunc::new(typed))
        }
    }
}

fn typed_call(a: &Arity) -> TokenStream {
    let Arity { n, tys, args } = a;
    let doc = doc_lines(&format!(
        "Calls the function with {n} argument(s) on a wasmtime fiber.

`store` is anything that gives mutable access to the store: `&mut Store<T>`, or
`&mut Caller<'_, T>` inside a host function. The returned future is wasmtime's own
[`TypedFunc::call_async`](wasmtime::TypedFunc::call_async) future: it borrows `self` (clone
the handle into a task that must own it) and is `Send` when the store's data is. It resolves
to the results, or to the error that ended the call: a [`Trap`](wasmtime::Trap), or the
error a host function returned (downcast it to its own type).

# Example

{}",
        typed_example(a)
    ));
    quote! {
        impl<#(#tys,)* R> crate::AsyncTypedFunc<(#(#tys,)*), R>
        where
            #(#tys: ::wasmtime::WasmTy,)*
            R: ::wasmtime::WasmResults,
        {
            #doc
            // One argument per wasm parameter, as the wasm signature has them.
            #[allow(clippy::too_many_arguments)]
            pub fn call<S>(
                &self,
                store: S,
                #(#args: #tys),*
            ) -> impl ::core::future::Future<Output = ::wasmtime::Result<R>>
                   + use<'_, S, #(#tys,)* R>
            where
                S: ::wasmtime::AsContextMut,
                S::Data: ::core::marker::Send,
                (#(#tys,)*): ::core::marker::Sync,
                R: ::core::marker::Sync,
            {
                // wasmtime's own future, as it is: no clone of the handle, no extra state.
                self.typed().call_async(store, (#(#args,)*))
            }
        }
    }
}

fn into_async_func(a: &Arity) -> TokenStream {
    let Arity { tys, args, .. } = a;
    quote! {
        impl<F, Fut, #(#tys,)* R> crate::IntoAsyncFunc<(#(#tys,)*), R> for F
        where
            F: ::core::ops::Fn(#(#tys),*) -> Fut
                + ::core::marker::Send
                + ::core::marker::Sync
                + 'static,
            Fut: ::core::future::Future<Output = R> + ::core::marker::Send + 'static,
            #(#tys: ::wasmtime::WasmTy,)*
            R: ::wasmtime::WasmRet,
        {
            fn into_func<T: ::core::marker::Send + 'static>(
                self,
                store: ::wasmtime::StoreContextMut<'_, T>,
            ) -> ::wasmtime::Func {
                ::wasmtime::Func::wrap_async(
                    store,
                    move |_: ::wasmtime::Caller<'_, T>, (#(#args,)*): (#(#tys,)*)|
                          -> ::std::boxed::Box<
                        dyn ::core::future::Future<Output = R> + ::core::marker::Send + '_,
                    > { ::std::boxed::Box::new(self(#(#args),*)) },
                )
            }
        }
    }
}
