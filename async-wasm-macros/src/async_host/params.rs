//! The parameters: which is the `Caller`, which are wasm numbers, which are data passed
//! through guest memory; and the attributes each carries over to what is made from it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, GenericParam, Ident, ItemFn, Lifetime, LifetimeParam, Pat,
    PathArguments, Type,
};

/// The name given to an elided `Caller` lifetime.
pub const CALLER_LIFETIME: &str = "'__async_host_caller";

/// What a parameter is to the guest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// wasmtime's `Caller`, not a wasm value.
    Caller,
    /// A wasm value, passed as it is.
    Number,
    /// `String`, `Vec<u8>` or `Json<T>`: a pointer and a length into guest memory.
    Data,
}

pub struct Param {
    pub role: Role,
    /// The user's attributes (`cfg`, lints), kept on the fn's parameter(s) and on the `let`
    /// that binds the user's pattern.
    pub attrs: Vec<Attribute>,
    pub pat: Pat,
    pub ty: Type,
    /// The name the parameter has in the generated fn.
    pub name: Ident,
    /// How errors name the parameter: its identifier, or its position.
    pub label: String,
    /// Its position among the fn's parameters, `Caller` included.
    pub index: usize,
}

impl Param {
    /// `let PAT = name;`, with the user's attributes. A pattern that binds nothing (`_`) is
    /// first moved into a named local, so that, as in an `async fn`, the argument lives
    /// until the future ends instead of being dropped when the fn is called.
    pub fn binding(&self, value: &TokenStream) -> TokenStream {
        let (attrs, pat, name) = (&self.attrs, &self.pat, &self.name);
        match pat {
            Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                quote!(#(#attrs)* let #pat = #value;)
            }
            _ => quote! {
                #(#attrs)* let #name = #value;
                #(#attrs)* let #pat = #name;
            },
        }
    }
}

/// What [`classify`] found: every parameter, and the caller's lifetime when there is one.
pub struct Params {
    pub params: Vec<Param>,
    pub caller_lifetime: Option<Lifetime>,
}

impl Params {
    pub fn caller(&self) -> Option<&Param> {
        self.params.iter().find(|p| p.role == Role::Caller)
    }

    pub fn has_data(&self) -> bool {
        self.params.iter().any(|p| p.role == Role::Data)
    }

    /// How many wasm parameters the import has: a data parameter is two.
    pub fn wasm_count(&self) -> usize {
        self.params
            .iter()
            .map(|p| match p.role {
                Role::Caller => 0,
                Role::Number => 1,
                Role::Data => 2,
            })
            .sum()
    }
}

/// Sorts the parameters into their roles, strips the `#[caller]` marker, and names an elided
/// `Caller` lifetime (declaring it on the fn) so that the future can be tied to it.
pub fn classify(func: &mut ItemFn) -> syn::Result<Params> {
    let mut params = Vec::new();
    let mut caller_lifetime = None;
    let inputs = std::mem::take(&mut func.sig.inputs);
    for (index, arg) in inputs.into_iter().enumerate() {
        let FnArg::Typed(arg) = arg else {
            unreachable!("receivers are rejected before")
        };
        let (marked, attrs) = take_caller_marker(arg.attrs)?;
        let mut ty = *arg.ty;
        let role = if marked || caller_type(&ty).is_some() {
            if index != 0 {
                return Err(syn::Error::new_spanned(
                    &ty,
                    "the `Caller` parameter must come first: wasmtime passes it before the \
                     wasm parameters",
                ));
            }
            caller_lifetime = Some(name_caller_lifetime(&mut ty, &mut func.sig.generics)?);
            Role::Caller
        } else {
            check_not_borrowed(&ty, index)?;
            if is_data(&ty) {
                Role::Data
            } else {
                Role::Number
            }
        };
        let (name, label) = match &*arg.pat {
            Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                (ident.ident.clone(), ident.ident.to_string())
            }
            pat => (
                format_ident!("__async_host_arg{}", index, span = pat.span()),
                format!("argument {}", index + 1),
            ),
        };
        params.push(Param {
            role,
            attrs,
            pat: *arg.pat,
            ty,
            name,
            label,
            index,
        });
    }
    Ok(Params {
        params,
        caller_lifetime,
    })
}

/// Removes a `#[caller]` marker (it is ours, the compiler would not know it); says whether
/// there was one.
fn take_caller_marker(attrs: Vec<Attribute>) -> syn::Result<(bool, Vec<Attribute>)> {
    let mut marked = false;
    let mut kept = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("caller") {
            attr.meta.require_path_only()?;
            marked = true;
        } else {
            kept.push(attr);
        }
    }
    Ok((marked, kept))
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

/// `String`, `Vec<..>` and `Json<..>`, by name: the macro must know how many wasm
/// parameters each parameter is before types are known. Whether the type really is data is
/// then checked by its `FromGuest` impl.
pub fn is_data(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    path.qself.is_none()
        && path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "String" || s.ident == "Vec" || s.ident == "Json")
}

/// A parameter whose type borrows cannot be a wasm value; say what it probably is instead.
fn check_not_borrowed(ty: &Type, index: usize) -> syn::Result<()> {
    if let Type::Reference(reference) = ty {
        return Err(syn::Error::new_spanned(
            reference,
            "`#[async_host]` fns own their parameters, which must outlive every `.await`: \
             take `String` or `Vec<u8>` (copied out of the guest's memory) instead of a \
             reference",
        ));
    }
    let mut lifetimes = LifetimeFinder(None);
    syn::visit::Visit::visit_type(&mut lifetimes, ty);
    if let Some(lifetime) = lifetimes.0 {
        let hint = if index == 0 {
            " If it is wasmtime's `Caller` under another name (a type alias), mark it \
             `#[caller]`."
        } else {
            ""
        };
        return Err(syn::Error::new_spanned(
            lifetime,
            format!("this parameter's type has a lifetime, so it cannot be a wasm value.{hint}"),
        ));
    }
    Ok(())
}

struct LifetimeFinder(Option<Lifetime>);

impl<'ast> syn::visit::Visit<'ast> for LifetimeFinder {
    fn visit_lifetime(&mut self, lifetime: &'ast Lifetime) {
        self.0.get_or_insert_with(|| lifetime.clone());
    }
}

/// Gives the caller's type (`Caller<'_, T>`, `Caller<T>`, `Host<'_>`) a named lifetime,
/// declared on the fn, unless the user named it already; returns that lifetime.
fn name_caller_lifetime(ty: &mut Type, generics: &mut syn::Generics) -> syn::Result<Lifetime> {
    let missing = || {
        syn::Error::new_spanned(
            &*ty,
            "the `Caller` parameter's type must show its lifetime and store data, as in \
             `Caller<'_, T>` (or `Host<'_>` for an alias)",
        )
    };
    let Type::Path(path) = &*ty else {
        return Err(missing());
    };
    let Some(segment) = path.path.segments.last() else {
        return Err(missing());
    };
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return Err(missing());
    };
    if let Some(GenericArgument::Lifetime(named)) = args.args.first()
        && named.ident != "_"
    {
        return Ok(named.clone());
    }
    let lifetime = Lifetime::new(CALLER_LIFETIME, Span::call_site());
    let Type::Path(path) = ty else { unreachable!() };
    let segment = path.path.segments.last_mut().expect("checked above");
    let PathArguments::AngleBracketed(args) = &mut segment.arguments else {
        unreachable!()
    };
    match args.args.first_mut() {
        Some(GenericArgument::Lifetime(elided)) => *elided = lifetime.clone(),
        _ => args
            .args
            .insert(0, GenericArgument::Lifetime(lifetime.clone())),
    }
    generics.params.insert(
        0,
        GenericParam::Lifetime(LifetimeParam::new(lifetime.clone())),
    );
    Ok(lifetime)
}
