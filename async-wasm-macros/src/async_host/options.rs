//! The attribute's arguments: `#[async_host(local, crate = "..", memory = "..", realloc = "..",
//! max_len = ..)]`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

/// What the arguments ask for.
pub struct Options {
    /// `local`: the future may be `!Send`; it is bound to its thread instead.
    pub local: bool,
    /// `crate = "path"`: where async-wasm is, for a renamed dependency.
    pub krate: Path,
    /// `memory = "name"`: the guest's memory export, for data parameters and results.
    pub memory: Option<LitStr>,
    /// `realloc = "name"`: the guest's allocator export, for data results.
    pub realloc: Option<LitStr>,
    /// `max_len = expr`: the cap on the bytes one call moves (a `u32` constant expression).
    pub max_len: Option<Expr>,
}

enum Arg {
    Local(Ident),
    Crate(Path),
    Memory(LitStr),
    Realloc(LitStr),
    MaxLen(Expr),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate` is a keyword, so it is not an `Ident`.
        if input.peek(Token![crate]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let lit: LitStr = input.parse()?;
            return Ok(Arg::Crate(lit.parse()?));
        }
        let name: Ident = input.parse()?;
        match name.to_string().as_str() {
            "local" => Ok(Arg::Local(name)),
            "max_len" => {
                input.parse::<Token![=]>()?;
                Ok(Arg::MaxLen(input.parse()?))
            }
            "memory" | "realloc" => {
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "an export name cannot be empty",
                    ));
                }
                Ok(if name == "memory" {
                    Arg::Memory(lit)
                } else {
                    Arg::Realloc(lit)
                })
            }
            _ => Err(syn::Error::new_spanned(
                name,
                "unknown `#[async_host]` argument: expected `local`, `crate = \"..\"`, \
                 `memory = \"..\"`, `realloc = \"..\"` or `max_len = ..`",
            )),
        }
    }
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options {
            local: false,
            krate: syn::parse_quote!(::async_wasm),
            memory: None,
            realloc: None,
            max_len: None,
        };
        let (mut seen_crate, mut seen_local) = (false, false);
        for arg in Punctuated::<Arg, Token![,]>::parse_terminated(input)? {
            let duplicate = match arg {
                Arg::Local(ident) => {
                    options.local = true;
                    std::mem::replace(&mut seen_local, true).then_some(ident.span())
                }
                Arg::Crate(path) => {
                    let span = syn::spanned::Spanned::span(&path);
                    options.krate = path;
                    std::mem::replace(&mut seen_crate, true).then_some(span)
                }
                Arg::Memory(lit) => options.memory.replace(lit).map(|old| old.span()),
                Arg::Realloc(lit) => options.realloc.replace(lit).map(|old| old.span()),
                Arg::MaxLen(expr) => options
                    .max_len
                    .replace(expr)
                    .map(|old| syn::spanned::Spanned::span(&old)),
            };
            if let Some(span) = duplicate {
                return Err(syn::Error::new(span, "this argument is given twice"));
            }
        }
        Ok(options)
    }
}
