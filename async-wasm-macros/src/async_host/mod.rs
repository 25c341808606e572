//! `#[async_host]`: rewrites an `async fn` into a function async-wasm can register as is.
//!
//! Numbers only, with a `Caller` first, the fn becomes (async-trait style)
//!
//! ```text
//! fn name<'__async_host_caller, ..>(caller: Caller<'__async_host_caller, T>, a: A, ..)
//!     -> Box<dyn HostFuture<Output = R> + Send + '__async_host_caller>
//! { Box::new(if_not_send_use_async_host_local(async move { let caller = caller; ..; body })) }
//! ```
//!
//! and without a `Caller` it returns `impl Future + 'static` (`Send` by the same check),
//! unboxed. The caller's
//! lifetime must stay late-bound (it appears only in the argument types), so that the fn
//! item is `for<'a> Fn(Caller<'a, T>, ..)`, the bound `wrap_asyncN` states.
//!
//! With data (`String`, `Vec<u8>`, `Json<T>`) among the parameters or in the result, the fn
//! becomes its wasm-level self: a `Caller` first (added when the user has none), each data
//! parameter a `(ptr, len)` pair of `i32`s, the output `wasmtime::Result<_>` (an `i64` for a
//! data result). Data parameters are copied out of guest memory in the fn's synchronous part,
//! before the user's future exists; the user's future then runs with owned values, and a
//! data result is written back through the caller after it completes.
//!
//! `local` swaps the `Send` check for `LocalFuture`, which binds the future to its thread.
//! Everything the expansion names is an absolute path under the crate path
//! (`::async_wasm` unless `crate = ".."`), so it works in any module.

mod options;
mod output;
mod params;
mod signature;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericParam, Ident, ItemFn, Lifetime, LifetimeParam};

use options::Options;
use output::Output;
use params::{Param, Params, Role};

/// The most wasm parameters an import may have here, as `wrap_async0..=15` take.
const MAX_WASM_PARAMS: usize = 15;

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options: Options = syn::parse2(args)?;
    let mut func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`#[async_host]` applies to an `async fn`: {e}"),
        )
    })?;
    signature::check(&func)?;
    let params = params::classify(&mut func)?;
    if let Some(lifetime) = &params.caller_lifetime {
        signature::check_caller_lifetime_is_late_bound(&func.sig, lifetime)?;
    }
    check_wasm_count(&params)?;
    let output = output::classify(&func.sig.output);
    // A `Result` goes the data way too, numbers or data alike: its error converts into
    // `wasmtime::Error`, and a `GuestError` among them reaches the guest through its memory.
    if params.has_data() || output.data || output.ok.is_some() {
        Ok(data_fn(&options, func, &params, &output))
    } else {
        let data_option = (options.memory.as_ref().map(ToTokens::to_token_stream))
            .or(options.realloc.as_ref().map(ToTokens::to_token_stream))
            .or(options.max_len.as_ref().map(ToTokens::to_token_stream));
        if let Some(option) = data_option {
            return Err(syn::Error::new_spanned(
                option,
                "`memory`, `realloc` and `max_len` are about data parameters and results \
                 (`String`, `Vec<u8>`, `Json<T>`) and error values (a `Result`'s \
                 `GuestError`), and this fn has none",
            ));
        }
        Ok(numbers_fn(&options, func, &params, &output))
    }
}

fn check_wasm_count(params: &Params) -> syn::Result<()> {
    let mut count = 0;
    for param in &params.params {
        count += match param.role {
            Role::Caller => 0,
            Role::Number => 1,
            Role::Data => 2,
        };
        if count > MAX_WASM_PARAMS {
            let data_note = if params.has_data() {
                " (a `String`, `Vec<u8>` or `Json<T>` parameter is two: a pointer and a length)"
            } else {
                ""
            };
            return Err(syn::Error::new_spanned(
                &param.pat,
                format!(
                    "`#[async_host]` functions take at most {MAX_WASM_PARAMS} wasm parameters\
                     {}, as wasmtime's typed host functions do; this one makes {}{data_note}",
                    if params.caller().is_some() {
                        " after the `Caller`"
                    } else {
                        ""
                    },
                    params.wasm_count()
                ),
            ));
        }
    }
    Ok(())
}

/// Wraps the future the fn returns: the `Send` check, or the thread binding of `local`. The
/// call carries the body's span, crate path included, so that an error about the future
/// points at the user's body.
fn wrap_future(options: &Options, span: Span, future: TokenStream) -> TokenStream {
    let krate = respan(options.krate.to_token_stream(), span);
    if options.local {
        quote_spanned!(span=> #krate::LocalFuture::new(#future))
    } else {
        quote_spanned!(span=> #krate::__private::if_not_send_use_async_host_local(#future))
    }
}

/// `tokens` with every token's span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// `wasm_param::<T>()` for every number parameter: a compile-time check whose error says
/// which types a parameter may have, on the parameter's own type.
fn number_checks(options: &Options, params: &Params) -> Vec<TokenStream> {
    let krate = &options.krate;
    params
        .params
        .iter()
        .filter(|p| p.role == Role::Number)
        .map(|p| {
            let cfgs = p
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"));
            let ty = &p.ty;
            quote_spanned!(ty.span()=> #(#cfgs)* #krate::__private::wasm_param::<#ty>();)
        })
        .collect()
}

/// `#(#attrs)* name: ty` for the generated fn's parameter list.
fn plain_input(param: &Param) -> TokenStream {
    let (attrs, name, ty) = (&param.attrs, &param.name, &param.ty);
    quote!(#(#attrs)* #name: #ty)
}

fn numbers_fn(
    options: &Options,
    mut func: ItemFn,
    params: &Params,
    output: &Output,
) -> TokenStream {
    let krate = &options.krate;
    let out = &output.ty;
    let body = &func.block;
    let bindings = params.params.iter().map(|p| {
        let name = &p.name;
        p.binding(&quote!(#name))
    });
    let future = quote_spanned! {body.span()=>
        async move {
            #(#bindings)*
            #[allow(clippy::let_unit_value)]
            let __async_host_output: #out = #body;
            __async_host_output
        }
    };
    let future = wrap_future(options, body.span(), future);
    let checks = number_checks(options, params);
    let inputs = params.params.iter().map(plain_input);
    let (ret, block) = match &params.caller_lifetime {
        Some(lifetime) => (
            quote_spanned! {out.span()=>
                ::std::boxed::Box<
                    dyn #krate::HostFuture<Output = #out> + ::core::marker::Send + #lifetime
                >
            },
            quote_spanned!(body.span()=> { #(#checks)* ::std::boxed::Box::new(#future) }),
        ),
        // `Send` is not written here: it would be checked first, and the error would lack
        // the hint of the check in the body. The future is `Send` all the same (auto traits
        // show through `impl Trait`), which the body's check guarantees.
        None => (
            quote_spanned! {out.span()=>
                impl ::core::future::Future<Output = #out> + 'static
            },
            quote!({ #(#checks)* #future }),
        ),
    };
    func.sig.asyncness = None;
    emit(&func, quote!(#(#inputs),*), ret, block)
}

fn data_fn(options: &Options, mut func: ItemFn, params: &Params, output: &Output) -> TokenStream {
    let krate = &options.krate;
    let wasmtime = quote!(#krate::__private::wasmtime);
    let caller = format_ident!("__async_host_caller");
    let abi = format_ident!("__ASYNC_HOST_ABI");
    // One `CallData` per call: the guest's memory is looked up once for every data
    // parameter and the result.
    let data = format_ident!("__async_host_data");

    // The caller: the user's, or one added (with its store data as a type parameter).
    let (lifetime, caller_ty) = match (params.caller(), &params.caller_lifetime) {
        (Some(user), Some(lifetime)) => (lifetime.clone(), user.ty.clone()),
        _ => {
            let lifetime = Lifetime::new(params::CALLER_LIFETIME, Span::call_site());
            let data = Ident::new("__AsyncHostData", Span::call_site());
            let generics = &mut func.sig.generics;
            let first_non_lifetime = generics
                .params
                .iter()
                .position(|p| !matches!(p, GenericParam::Lifetime(_)))
                .unwrap_or(generics.params.len());
            generics.params.insert(
                first_non_lifetime,
                syn::parse_quote!(#data: ::core::marker::Send + 'static),
            );
            generics.params.insert(
                0,
                GenericParam::Lifetime(LifetimeParam::new(lifetime.clone())),
            );
            (
                lifetime.clone(),
                syn::parse_quote!(#wasmtime::Caller<#lifetime, #data>),
            )
        }
    };

    let mut abi_value = {
        let name = func.sig.ident.to_string();
        let name = name.trim_start_matches("r#");
        quote!(#krate::data::GuestAbi::new(#name))
    };
    if let Some(memory) = &options.memory {
        abi_value = quote!(#abi_value.with_memory(#memory));
    }
    if let Some(realloc) = &options.realloc {
        abi_value = quote!(#abi_value.with_realloc(#realloc));
    }
    if let Some(max_len) = &options.max_len {
        abi_value = quote_spanned!(max_len.span()=> #abi_value.with_max_len(#max_len));
    }

    // The wasm-level parameters, and the copies of data parameters made before the future.
    let mut inputs = vec![quote!(#caller: #caller_ty)];
    let mut copies = Vec::new();
    for param in params.params.iter().filter(|p| p.role != Role::Caller) {
        if param.role == Role::Number {
            inputs.push(plain_input(param));
            continue;
        }
        let (attrs, name, ty, label) = (&param.attrs, &param.name, &param.ty, &param.label);
        // Named by position, with the macro's own hygiene (located at the pattern, for
        // errors): no parameter name of the user's can be the same.
        let span = Span::mixed_site().located_at(param.pat.span());
        let ptr = format_ident!("__arg{}_ptr", param.index, span = span);
        let len = format_ident!("__arg{}_len", param.index, span = span);
        inputs.push(quote!(#(#attrs)* #ptr: i32, #(#attrs)* #len: i32));
        copies.push(quote_spanned! {ty.span()=>
            #(#attrs)*
            let #name: #ty = match #data.read::<#ty, _>(&mut #caller, #label, #ptr, #len) {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(error) => {
                    return ::std::boxed::Box::new(#krate::__private::failed(&#caller, error));
                }
            };
        });
    }

    // The user's future, with its bindings. With a data result the caller is lent to it, to
    // be used again for writing the result; otherwise it is moved in.
    // Kept for the result or an error value.
    let keeps_caller = output.data || output.ok.is_some();
    let bindings = params.params.iter().map(|p| match p.role {
        Role::Caller if keeps_caller => {
            let binding = p.binding(&quote!(&mut #caller));
            quote!(#[allow(unused_mut)] #binding)
        }
        Role::Caller => p.binding(&quote!(#caller)),
        _ => {
            let name = &p.name;
            p.binding(&quote!(#name))
        }
    });
    let body = &func.block;
    let out = &output.ty;
    let user_future = quote_spanned! {body.span()=>
        async move {
            #[allow(clippy::let_unit_value)]
            let __async_host_output: #out = #body;
            __async_host_output
        }
    };

    // What the guest gets: the value, or its `Ok` value, written back when it is data.
    let wasm_out = match (&output.ok, output.data) {
        (_, true) => quote!(i64),
        (Some(ok), false) => quote!(#ok),
        (None, false) => quote!(#out),
    };
    let ok_value = match &output.ok {
        Some(_) => quote! {
            match __async_host_output {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(error) => {
                    let error = ::core::convert::Into::<#wasmtime::Error>::into(error);
                    // A `GuestError` is the guest's to handle: given as a value, with the
                    // result's zero value. Anything else traps.
                    return match error.downcast::<#krate::data::GuestError>() {
                        ::core::result::Result::Ok(guest) => #data
                            .write_error(&mut #caller, guest)
                            .await
                            .map(|()| #krate::__private::zero_value()),
                        ::core::result::Result::Err(error) => {
                            ::core::result::Result::Err(error)
                        }
                    };
                }
            }
        },
        None => quote!(__async_host_output),
    };
    let keep_caller = if keeps_caller {
        quote!(let mut #caller = #caller;)
    } else {
        quote!()
    };
    let give = if output.data {
        quote!(#data.write(&mut #caller, __async_host_value).await)
    } else {
        quote!(::core::result::Result::Ok(__async_host_value))
    };
    let future = quote_spanned! {body.span()=>
        async move {
            #keep_caller
            #[allow(clippy::let_unit_value)]
            let __async_host_output: #out = {
                #(#bindings)*
                #user_future
            }
            .await;
            // `()` when the guest gets nothing back: fine here, though clippy would blame
            // the user's body, whose span these lines have.
            #[allow(clippy::let_unit_value)]
            let __async_host_value = #ok_value;
            #[allow(clippy::let_unit_value)]
            let __async_host_result: #wasmtime::Result<#wasm_out> = #give;
            __async_host_result
        }
    };
    let future = wrap_future(options, body.span(), future);
    let checks = number_checks(options, params);
    let ret = quote! {
        ::std::boxed::Box<
            dyn #krate::HostFuture<Output = #wasmtime::Result<#wasm_out>>
                + ::core::marker::Send
                + #lifetime
        >
    };
    let block = quote_spanned! {body.span()=>
        {
            const #abi: #krate::data::GuestAbi = #abi_value;
            #(#checks)*
            #[allow(unused_mut)]
            let mut #caller = #caller;
            #[allow(unused_mut, unused_variables)]
            let mut #data = #abi.call_data();
            #(#copies)*
            ::std::boxed::Box::new(#future)
        }
    };
    func.sig.asyncness = None;
    // Two wasm parameters per data parameter: the user's seven are fifteen here.
    func.attrs
        .push(syn::parse_quote!(#[allow(clippy::too_many_arguments)]));
    emit(&func, quote!(#(#inputs),*), ret, block)
}

/// The fn with its new parameters, return type and body; attributes, visibility, name,
/// generics and where clause as the user wrote them.
fn emit(func: &ItemFn, inputs: TokenStream, ret: TokenStream, block: TokenStream) -> TokenStream {
    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    let (constness, fn_token, ident, generics, where_clause) = (
        &sig.constness,
        &sig.fn_token,
        &sig.ident,
        &sig.generics,
        &sig.generics.where_clause,
    );
    quote! {
        #(#attrs)*
        #vis #constness #fn_token #ident #generics (#inputs) -> #ret #where_clause #block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str) -> String {
        expand(args.parse().unwrap(), item.parse().unwrap())
            .unwrap()
            .to_string()
    }

    /// A `_` argument is moved into the future (so that it lives until the future ends, as
    /// in a plain `async fn`): `let _ = x;` alone does not capture `x`.
    #[test]
    fn a_wildcard_argument_is_moved_into_the_future() {
        let out = expand_str(
            "",
            "async fn f(caller: Caller<'_, ()>, _: i32, (a, _): (i32, i32)) -> i32 { a }",
        );
        let future = &out[out.find("async move").unwrap()..];
        for arg in ["__async_host_arg1", "__async_host_arg2"] {
            let moved = format!("let {arg} = {arg} ;");
            assert!(future.contains(&moved), "{arg} is not moved in: {out}");
        }
        assert!(future.contains("let _ = __async_host_arg1 ;"), "{out}");
        assert!(
            future.contains("let (a , _) = __async_host_arg2 ;"),
            "{out}"
        );
    }

    /// `cfg` attributes follow a parameter to every item made from it.
    #[test]
    fn cfg_follows_a_data_parameter() {
        let out = expand_str(
            "",
            "async fn f(#[cfg(feature = \"x\")] s: String) -> i32 { 0 }",
        );
        for item in ["__arg0_ptr : i32", "__arg0_len : i32", "let s : String"] {
            let at = out.find(item).unwrap_or_else(|| panic!("no {item}: {out}"));
            assert!(
                out[..at].trim_end().ends_with("# [cfg (feature = \"x\")]"),
                "{item} has no cfg: {out}"
            );
        }
    }
}
