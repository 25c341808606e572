//! `impl_wrap_async!(family: start..=end)`: one expansion function per arity-indexed family.
//!
//! Every family is the same shape repeated for 0..=15 wasm parameters; writing them by hand
//! would be near-identical items by the dozen. Each family's one doc example lives on its
//! trait or type in the runtime crate; a generated item's doc says what its arity does and
//! links there.

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
    IntoHostFunc,
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
            "into_host_func" => Family::IntoHostFunc,
            _ => {
                return Err(syn::Error::new_spanned(
                    name,
                    "unknown family: expected one of `func_ext`, `linker_ext`, `getter`, \
                     `typed_call`, `into_async_func`, `into_host_func`",
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
                Family::IntoHostFunc => into_host_func(&arity),
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

    /// "no wasm parameters", "1 wasm parameter", "3 wasm parameters".
    fn params_phrase(&self) -> String {
        match self.n {
            0 => "no wasm parameters".to_string(),
            1 => "1 wasm parameter".to_string(),
            n => format!("{n} wasm parameters"),
        }
    }
}

fn doc_lines(text: &str) -> TokenStream {
    text.lines().map(|line| quote!(#[doc = #line])).collect()
}

/// The bounds of a `wrap_asyncN`-shaped callback `F` (a `Caller`, then N wasm parameters,
/// returning a boxed host future), shared by `FuncExt`, `LinkerExt` and `IntoHostFunc`.
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

/// The bounds of a caller-less callback `F` (N wasm parameters, returning any `Send +
/// 'static` future), shared by `IntoAsyncFunc` and `IntoHostFunc`.
fn plain_callback_bounds(a: &Arity) -> TokenStream {
    let tys = &a.tys;
    quote! {
        F: ::core::ops::Fn(#(#tys),*) -> Fut
            + ::core::marker::Send
            + ::core::marker::Sync
            + 'static,
        Fut: ::core::future::Future<Output = R> + ::core::marker::Send + 'static,
        #(#tys: ::wasmtime::WasmTy,)*
        R: ::wasmtime::WasmRet,
    }
}

/// The closure handed to wasmtime's `wrap_async` / `func_wrap_async` for a callback with a
/// `Caller`: it takes wasmtime's parameter tuple, calls `func` with the parameters spread
/// out, and upcasts the `Box<dyn HostFuture>` to the `Box<dyn Future>` wasmtime wants (no
/// allocation).
/// The closure wasmtime calls for a host function with a `Caller`, and the statement to put
/// before it. `engine` is the engine it is defined on: its cap on data (`data::limit`) is
/// looked up once, there, and held in a thread-local while the function's synchronous part
/// runs, where its `CallData` is made. (The closure stays inline in wasmtime's call, where
/// its higher-ranked signature is inferred.)
fn forwarding_closure(
    a: &Arity,
    func: &TokenStream,
    engine: &TokenStream,
) -> (TokenStream, TokenStream) {
    let Arity { tys, args, .. } = a;
    (
        quote!(let __max_data_len = crate::data::limit::engine_max_len(#engine);),
        quote! {
            move |caller: ::wasmtime::Caller<'_, T>, (#(#args,)*): (#(#tys,)*)|
                  -> ::std::boxed::Box<
                dyn ::core::future::Future<Output = R> + ::core::marker::Send + '_,
            > {
                let _max_data_len = crate::data::limit::Scope::enter(__max_data_len);
                #func(caller, #(#args),*)
            }
        },
    )
}

fn plain_forwarding_closure(a: &Arity, func: &TokenStream) -> TokenStream {
    let Arity { tys, args, .. } = a;
    quote! {
        move |_: ::wasmtime::Caller<'_, T>, (#(#args,)*): (#(#tys,)*)|
              -> ::std::boxed::Box<
            dyn ::core::future::Future<Output = R> + ::core::marker::Send + '_,
        > { ::std::boxed::Box::new(#func(#(#args),*)) }
    }
}

fn func_ext(a: &Arity) -> TokenStream {
    let Arity { tys, .. } = a;
    let bounds = host_callback_bounds(a);
    let (prelude, forward) = forwarding_closure(
        a,
        &quote!(func),
        &quote!(::wasmtime::AsContext::as_context(&store).engine()),
    );
    let name = a.method("wrap_async");
    let doc = doc_lines(&format!(
        "Wraps an async host function taking a [`Caller`](wasmtime::Caller) and {}.

One of the `wrap_async0` .. `wrap_async15` family: see [`FuncExt`](crate::FuncExt) for an
example, and [`FuncExt::wrap_host`](crate::FuncExt::wrap_host), which infers the arity.",
        a.params_phrase()
    ));
    quote! {
        #doc
        #[doc(alias = "wrap_async")]
        fn #name<T, #(#tys,)* R, F>(
            store: impl ::wasmtime::AsContextMut<Data = T>,
            func: F,
        ) -> Self
        where
            #bounds
        {
            #prelude
            <Self as crate::func_ext::sealed::Sealed>::from_func(::wasmtime::Func::wrap_async(
                store, #forward,
            ))
        }
    }
}

fn linker_ext(a: &Arity) -> TokenStream {
    let Arity { tys, .. } = a;
    let bounds = host_callback_bounds(a);
    let (prelude, forward) = forwarding_closure(
        a,
        &quote!(func),
        &quote!(crate::linker_ext::sealed::Sealed::linker_mut(self).engine()),
    );
    let name = a.method("func_wrap_async");
    let doc = doc_lines(&format!(
        "Defines `module`.`name` as an async host function taking a
[`Caller`](wasmtime::Caller) and {}.

One of the `func_wrap_async0` .. `func_wrap_async15` family: see
[`LinkerExt`](crate::LinkerExt) for an example, and
[`LinkerExt::func_wrap_host`](crate::LinkerExt::func_wrap_host), which infers the arity.

# Errors

As [`Linker::func_wrap_async`](wasmtime::Linker::func_wrap_async): when the name is
already defined and shadowing is off.",
        a.params_phrase()
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
            #prelude
            crate::linker_ext::sealed::Sealed::linker_mut(self).func_wrap_async(
                module, name, #forward,
            )?;
            ::core::result::Result::Ok(self)
        }
    }
}

fn getter(a: &Arity) -> TokenStream {
    let Arity { tys, .. } = a;
    let name = a.method("get");
    let doc = doc_lines(&format!(
        "Types the function as taking {} and returning `R`, for async calls.

One of the `get0` .. `get15` family: see [`AsyncGetter`](crate::AsyncGetter) for an
example.

# Errors

When the function's wasm type is not that of the type parameters.

# Panics

When `store` is not the function's store (wasmtime's check).",
        a.params_phrase()
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
    let Arity { tys, args, .. } = a;
    let doc = doc_lines(&format!(
        "Calls the function with {} on a wasmtime fiber.

See [`AsyncTypedFunc`](crate::AsyncTypedFunc) for what `store` may be, what the future
borrows and when it is `Send`, and an example.

# Errors

The error that ended the call: a [`Trap`](wasmtime::Trap), or the error a host function
returned (downcast it to its own type).

# Panics

When `store` is not the function's store (wasmtime's check).",
        a.params_phrase()
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
    let Arity { tys, .. } = a;
    let bounds = plain_callback_bounds(a);
    let forward = plain_forwarding_closure(a, &quote!(self));
    quote! {
        impl<F, Fut, #(#tys,)* R> crate::into_async_func::sealed::Sealed<(#(#tys,)*), R> for F
        where
            #bounds
        {
        }

        impl<F, Fut, #(#tys,)* R> crate::IntoAsyncFunc<(#(#tys,)*), R> for F
        where
            #bounds
        {
            fn into_func<T: ::core::marker::Send + 'static>(
                self,
                store: ::wasmtime::StoreContextMut<'_, T>,
            ) -> ::wasmtime::Func {
                ::wasmtime::Func::wrap_async(store, #forward)
            }
        }
    }
}

/// Both shapes `FuncExt::wrap_host` and `LinkerExt::func_wrap_host` take, told apart by the
/// marker type parameter: `(WithCaller, params, R)` and `(NoCaller, params, R)`.
fn into_host_func(a: &Arity) -> TokenStream {
    let Arity { tys, .. } = a;
    let with_caller = {
        let bounds = host_callback_bounds(a);
        let into_func = forwarding_closure(a, &quote!(self), &quote!(store.engine()));
        let define = forwarding_closure(a, &quote!(self), &quote!(linker.engine()));
        let marker = quote!((crate::__private::WithCaller, (#(#tys,)*), R));
        host_func_impls(
            &marker,
            &quote!(F, T, #(#tys,)* R),
            &bounds,
            &into_func,
            &define,
        )
    };
    let without_caller = {
        let bounds = plain_callback_bounds(a);
        let forward = plain_forwarding_closure(a, &quote!(self));
        let marker = quote!((crate::__private::NoCaller, (#(#tys,)*), R));
        let bounds = quote!(#bounds T: ::core::marker::Send + 'static,);
        host_func_impls(
            &marker,
            &quote!(F, Fut, T, #(#tys,)* R),
            &bounds,
            &(quote!(), forward.clone()),
            &(quote!(), forward),
        )
    };
    quote!(#with_caller #without_caller)
}

fn host_func_impls(
    marker: &TokenStream,
    generics: &TokenStream,
    bounds: &TokenStream,
    (into_func_prelude, into_func): &(TokenStream, TokenStream),
    (define_prelude, define): &(TokenStream, TokenStream),
) -> TokenStream {
    quote! {
        impl<#generics> crate::host_func::sealed::Sealed<T, #marker> for F where #bounds {}

        impl<#generics> crate::IntoHostFunc<T, #marker> for F
        where
            #bounds
        {
            fn into_func(self, store: ::wasmtime::StoreContextMut<'_, T>) -> ::wasmtime::Func {
                #into_func_prelude
                ::wasmtime::Func::wrap_async(store, #into_func)
            }

            fn define(
                self,
                linker: &mut ::wasmtime::Linker<T>,
                module: &str,
                name: &str,
            ) -> ::wasmtime::Result<()> {
                #define_prelude
                linker.func_wrap_async(module, name, #define)?;
                ::core::result::Result::Ok(())
            }
        }
    }
}
