//! The return type: a wasm result as it is, or data (also inside a `Result`) written back to
//! the guest.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{GenericArgument, PathArguments, ReturnType, Type};

use super::params::is_data;

pub struct Output {
    /// The type the user's body produces.
    pub ty: TokenStream,
    /// The `T` of a `Result<T, ..>`-shaped type (any type named `Result` whose first
    /// argument is a type), whose error converts into `wasmtime::Error`.
    pub ok: Option<Type>,
    /// Whether the value (or its `Ok` value) is data for the guest.
    pub data: bool,
}

pub fn classify(output: &ReturnType) -> Output {
    let ReturnType::Type(_, ty) = output else {
        return Output {
            ty: quote!(()),
            ok: None,
            data: false,
        };
    };
    let ok = result_ok_type(ty).cloned();
    let data = ok.as_ref().map_or_else(|| is_data(ty), is_data);
    Output {
        ty: quote!(#ty),
        ok,
        data,
    }
}

fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    if segment.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}
