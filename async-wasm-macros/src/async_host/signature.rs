//! Checks of the fn as a whole: what cannot become a wasm import, and generics that would
//! make the `Caller`'s lifetime early-bound.

use syn::visit::Visit;
use syn::{ItemFn, Lifetime, Signature};

/// Rejects what cannot become a wasm import, each on its own tokens.
pub fn check(func: &ItemFn) -> syn::Result<()> {
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

/// Rejects bounds that name the caller's lifetime. A lifetime that appears in a bound or a
/// where clause is early-bound, so the fn item is `Fn(Caller<'x, T>, ..)` for one `'x`
/// only, while wasmtime needs `for<'a> Fn(Caller<'a, T>, ..)`; the compiler would report
/// "implementation of `Fn` is not general enough" at the registration, far from the cause.
pub fn check_caller_lifetime_is_late_bound(sig: &Signature, caller: &Lifetime) -> syn::Result<()> {
    struct Finder<'a> {
        wanted: &'a Lifetime,
        found: Option<Lifetime>,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_lifetime(&mut self, lifetime: &'ast Lifetime) {
            if lifetime.ident == self.wanted.ident && self.found.is_none() {
                self.found = Some(lifetime.clone());
            }
        }
    }
    let mut finder = Finder {
        wanted: caller,
        found: None,
    };
    for param in &sig.generics.params {
        match param {
            syn::GenericParam::Lifetime(def) => {
                // The definition itself is fine; its bounds, or other lifetimes bounded by
                // it, are not.
                def.bounds.iter().for_each(|b| finder.visit_lifetime(b));
                if def.lifetime.ident == caller.ident && !def.bounds.is_empty() {
                    finder.found.get_or_insert(def.lifetime.clone());
                }
            }
            syn::GenericParam::Type(ty) => finder.visit_type_param(ty),
            syn::GenericParam::Const(konst) => finder.visit_const_param(konst),
        }
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        finder.visit_where_clause(where_clause);
    }
    match finder.found {
        None => Ok(()),
        Some(at) => Err(syn::Error::new_spanned(
            at,
            format!(
                "`{caller}` is the `Caller`'s lifetime, and a bound or where clause that \
                 names it makes it early-bound: wasmtime needs a host function that works \
                 for every caller lifetime (`for<'a> Fn(Caller<'a, T>, ..)`). Remove the \
                 bound: the returned future already lives as long as the caller"
            ),
        )),
    }
}
