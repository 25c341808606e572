//! `#[async_host]`: rewrites an `async fn` into a function async-wasm can register as is.
//!
//! With a `Caller` first, the fn becomes (async-trait style)
//!
//! ```text
//! fn name<'__async_host_caller, ..>(caller: Caller<'__async_host_caller, T>, a: A, ..)
//!     -> Box<dyn HostFuture<Output = R> + Send + '__async_host_caller>
//! { Box::new(async move { let caller = caller; let a = a; ..; body }) }
//! ```
//!
//! The caller's lifetime must stay late-bound (it appears only in the argument types, never in
//! a where clause), so that the fn item is `for<'a> Fn(Caller<'a, T>, ..)`, which is the bound
//! `wrap_asyncN` states. Without a `Caller`, the fn returns `impl Future + Send + 'static`,
//! unboxed, which is what `FuncExt::wrap_async` takes.
//!
//! Everything the expansion names is an absolute path, so it works in any module.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, GenericParam, ItemFn, Lifetime, LifetimeParam, Pat, PathArguments,
    ReturnType, Type,
};

/// The most wasm parameters after the `Caller` that `wrap_async0..=15` accept.
const MAX_WASM_PARAMS: usize = 15;

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "`#[async_host]` takes no arguments",
        ));
    }
    let mut func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`#[async_host]` applies to an `async fn`: {e}"),
        )
    })?;
    check_signature(&func)?;
    let caller = find_caller(&func)?;
    check_param_count(&func, caller.is_some())?;
    let output = match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let bindings = bind_params(&mut func, caller.as_ref());
    let body = &func.block;
    // The future is built with the span of the user's body: if it is not `Send`, the
    // compiler points at their code, not at ours.
    let future = quote_spanned! {body.span()=>
        async move {
            #(#bindings)*
            let __async_host_output: #output = #body;
            __async_host_output
        }
    };
    func.sig.asyncness = None;
    let (ret, block) = match caller {
        Some(lifetime) => {
            let ret = quote_spanned! {output.span()=>
                ::std::boxed::Box<
                    dyn ::async_wasm::HostFuture<Output = #output> + ::core::marker::Send + #lifetime
                >
            };
            (
                ret,
                quote_spanned!(body.span()=> { ::std::boxed::Box::new(#future) }),
            )
        }
        None => {
            let ret = quote_spanned! {output.span()=>
                impl ::core::future::Future<Output = #output> + ::core::marker::Send + 'static
            };
            (ret, quote!({ #future }))
        }
    };
    let ItemFn {
        attrs, vis, sig, ..
    } = &func;
    let (fn_token, ident, generics, inputs, where_clause) = (
        &sig.fn_token,
        &sig.ident,
        &sig.generics,
        &sig.inputs,
        &sig.generics.where_clause,
    );
    Ok(quote! {
        #(#attrs)*
        #vis #fn_token #ident #generics (#inputs) -> #ret #where_clause #block
    })
}

/// Rejects what cannot become a wasm import, each on its own tokens.
fn check_signature(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            "`#[async_host]` needs an `async fn`: add `async` before `fn` \
             (a synchronous import can be registered with `Func::wrap`)",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            unsafety,
            "`#[async_host]` functions cannot be `unsafe`: wasmtime calls them as safe functions",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            "`#[async_host]` functions cannot declare an ABI: wasmtime calls them as Rust functions",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "`#[async_host]` functions cannot be variadic",
        ));
    }
    if let Some(receiver) = sig.receiver() {
        return Err(syn::Error::new_spanned(
            receiver,
            "`#[async_host]` functions cannot take `self`: a wasm import is a free function \
             (pass state through the store's data and the `Caller`)",
        ));
    }
    Ok(())
}

/// Finds a leading `Caller<..>` parameter and makes its lifetime a named, late-bound one,
/// which the returned future is tied to. Returns that lifetime, or `None` without a caller.
fn find_caller(func: &ItemFn) -> syn::Result<Option<Lifetime>> {
    for (index, arg) in func.sig.inputs.iter().enumerate() {
        let FnArg::Typed(arg) = arg else { continue };
        if caller_type(&arg.ty).is_none() {
            continue;
        }
        if index != 0 {
            return Err(syn::Error::new_spanned(
                &arg.ty,
                "the `Caller` parameter must come first: wasmtime passes it before the wasm \
                 parameters",
            ));
        }
    }
    let Some(FnArg::Typed(first)) = func.sig.inputs.first() else {
        return Ok(None);
    };
    let Some(segment) = caller_type(&first.ty) else {
        return Ok(None);
    };
    let PathArguments::AngleBracketed(generic_args) = &segment.arguments else {
        return Err(syn::Error::new_spanned(
            segment,
            "`Caller` needs its store data type: write `Caller<'_, T>`",
        ));
    };
    match generic_args.args.first() {
        Some(GenericArgument::Lifetime(lifetime)) if lifetime.ident != "_" => {
            Ok(Some(lifetime.clone()))
        }
        _ => Ok(Some(Lifetime::new(
            "'__async_host_caller",
            Span::call_site(),
        ))),
    }
}

/// The last path segment of `ty` when it names a `Caller`.
fn caller_type(ty: &Type) -> Option<&syn::PathSegment> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    path.path
        .segments
        .last()
        .filter(|segment| segment.ident == "Caller")
}

fn check_param_count(func: &ItemFn, has_caller: bool) -> syn::Result<()> {
    let mut wasm_params = func.sig.inputs.iter().skip(usize::from(has_caller));
    if let Some(extra) = wasm_params.nth(MAX_WASM_PARAMS) {
        let after = if has_caller {
            " after the `Caller`"
        } else {
            ""
        };
        return Err(syn::Error::new_spanned(
            extra,
            format!(
                "`#[async_host]` functions take at most {MAX_WASM_PARAMS} wasm parameters\
                 {after}, as wasmtime's typed host functions do; this is parameter {}",
                MAX_WASM_PARAMS + 1
            ),
        ));
    }
    Ok(())
}

/// Names every parameter so the async block can move it in, and returns the `let`s that
/// rebind the user's patterns (`mut x`, `(a, b)`, `_`) inside the block. Moving every
/// argument in keeps Rust's drop order: arguments live as long as the body, as in an
/// `async fn`. Also names an elided `Caller` lifetime (`caller_lifetime`, from
/// [`find_caller`]).
fn bind_params(func: &mut ItemFn, caller_lifetime: Option<&Lifetime>) -> Vec<TokenStream> {
    let mut bindings = Vec::new();
    for (index, arg) in func.sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(arg) = arg else { continue };
        if index == 0
            && let Some(lifetime) = caller_lifetime
        {
            name_caller_lifetime(&mut arg.ty, lifetime, &mut func.sig.generics);
        }
        let pat = &*arg.pat;
        match pat {
            Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                let name = &ident.ident;
                bindings.push(quote!(let #pat = #name;));
                *arg.pat = syn::parse_quote!(#name);
            }
            _ => {
                let name = format_ident!("__async_host_arg{}", index, span = pat.span());
                bindings.push(quote!(let #pat = #name;));
                *arg.pat = syn::parse_quote!(#name);
            }
        }
    }
    bindings
}

/// Gives `Caller<'_, T>` / `Caller<T>` the named lifetime and declares it on the fn; a
/// lifetime the user already named is left alone.
fn name_caller_lifetime(ty: &mut Type, lifetime: &Lifetime, generics: &mut syn::Generics) {
    if lifetime.ident != "__async_host_caller" {
        return;
    }
    let Type::Path(path) = ty else { return };
    let Some(segment) = path.path.segments.last_mut() else {
        return;
    };
    let PathArguments::AngleBracketed(args) = &mut segment.arguments else {
        return;
    };
    match args.args.first_mut() {
        Some(GenericArgument::Lifetime(existing)) => *existing = lifetime.clone(),
        _ => args
            .args
            .insert(0, GenericArgument::Lifetime(lifetime.clone())),
    }
    generics.params.insert(
        0,
        GenericParam::Lifetime(LifetimeParam::new(lifetime.clone())),
    );
}
