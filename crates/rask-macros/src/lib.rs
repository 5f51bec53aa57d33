//! # rask-macros: `#[rask::delayed]`
//!
//! The attribute keeps the function as it is and adds a module of the same name with its lazy
//! form:
//!
//! ```text
//! #[rask::delayed]
//! fn inc(x: i64) -> i64 { x + 1 }
//!
//! let a = inc::lazy(1);        // Delayed<i64>: nothing has run
//! let b = inc::lazy(&a);       // arguments are plain values or other delayeds
//! assert_eq!(b.compute()?, 3);
//! assert_eq!(inc(1), 2);       // the function itself is unchanged
//! ```
//!
//! The function is also registered under its path (`inc::NAME`, e.g. `"my_crate::etl::inc"`)
//! with serde for its arguments and result, so a worker process of the same binary can run it.
//! Parameters may be owned (`T`, cloned from the shared input), borrowed (`&T`, `&str`, no
//! copy), `Vec<T>` or `&[T]` (both also accept a list of `Delayed<T>`; `&[T]` borrows a whole
//! `Vec<T>` input without copying it). Arguments and results must be
//! `serde` types. A function returning `Result<T, E>` gives a `Delayed<T>`, and its errors
//! become task errors with their chain of causes. Calls are pure (equal arguments, equal key,
//! computed once) unless the attribute says `#[rask::delayed(impure)]`.
//!
//! Mark functions that are items of a module, not functions declared inside another function's
//! body: the generated module refers to the function as `super::name`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{
    parse_macro_input, spanned::Spanned, FnArg, GenericArgument, ItemFn, Pat, PathArguments,
    ReturnType, Type,
};

/// Gives a function a lazy form and registers it by name. See the crate documentation.
#[proc_macro_attribute]
pub fn delayed(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    let pure = match attr.to_string().trim() {
        "" | "pure" => true,
        "impure" => false,
        other => {
            return syn::Error::new(
                Span::call_site(),
                format!(
                    "unknown option `{other}`: #[rask::delayed] takes nothing, `pure` or `impure`"
                ),
            )
            .to_compile_error()
            .into()
        }
    };
    match expand(&function, pure) {
        Ok(tokens) => quote!(#function #tokens).into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error).into()
        }
    }
}

/// How a parameter is taken out of its input value.
enum ParamKind {
    /// `&T`
    Ref(Type),
    /// `&[T]`
    Slice(Type),
    /// `&str`
    Str,
    /// `Vec<T>`
    Vec(Type),
    /// `T`
    Owned(Type),
}

fn expand(function: &ItemFn, pure: bool) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[rask::delayed] functions cannot be generic: a registered function needs one concrete type per argument (write a small non-generic wrapper per type)",
        ));
    }
    if sig.asyncness.is_some() {
        return Err(syn::Error::new(sig.span(), "#[rask::delayed] functions cannot be async"));
    }
    let name = &sig.ident;
    let vis = &function.vis;
    let mut params = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else {
            return Err(syn::Error::new(
                input.span(),
                "#[rask::delayed] works on free functions, not methods",
            ));
        };
        let Pat::Ident(ident) = &*typed.pat else {
            return Err(syn::Error::new(
                typed.pat.span(),
                "#[rask::delayed] parameters must be plain names",
            ));
        };
        params.push((ident.ident.clone(), param_kind(&typed.ty)));
    }
    let (output, fallible) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), false),
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(ok) => (ok, true),
            None => ((**ty).clone(), false),
        },
    };

    let arity = params.len();
    let lazy_params = params.iter().map(|(ident, kind)| {
        let target = match kind {
            ParamKind::Ref(t) | ParamKind::Owned(t) => quote!(#t),
            ParamKind::Slice(t) | ParamKind::Vec(t) => quote!(::std::vec::Vec<#t>),
            ParamKind::Str => quote!(::std::string::String),
        };
        quote!(#ident: impl ::rask::__private::IntoArg<#target>)
    });
    let lazy_args =
        params.iter().map(|(ident, _)| quote!(::rask::__private::IntoArg::into_arg(#ident)));
    let extract = params.iter().enumerate().map(|(index, (ident, kind))| {
        let param = ident.to_string();
        let context = quote!(&::rask::__private::ArgContext { function: NAME, index: #index, param: #param });
        match kind {
            ParamKind::Ref(t) => quote!(let #ident: &#t = ::rask::__private::arg_ref::<#t>(args, #context)?;),
            ParamKind::Owned(t) => quote!(let #ident: #t = ::rask::__private::arg_owned::<#t>(args, #context)?;),
            ParamKind::Vec(t) => quote!(let #ident: ::std::vec::Vec<#t> = ::rask::__private::arg_vec::<#t>(args, #context)?;),
            ParamKind::Slice(t) => {
                let held = format_ident!("{}_held", ident);
                quote!(
                    let #held = ::rask::__private::arg_slice::<#t>(args, #context)?;
                    let #ident: &[#t] = &#held;
                )
            }
            ParamKind::Str => quote!(
                let #ident: &str = ::rask::__private::arg_ref::<::std::string::String>(args, #context)?;
            ),
        }
    });
    let call_args = params.iter().map(|(ident, _)| ident);
    let call = if fallible {
        quote!(super::#name(#(#call_args),*).map_err(::rask::__private::error)?)
    } else {
        quote!(super::#name(#(#call_args),*))
    };
    let decode_arms = params.iter().enumerate().map(|(index, (_, kind))| {
        let t = match kind {
            ParamKind::Ref(t) | ParamKind::Owned(t) => quote!(#t),
            ParamKind::Slice(t) | ParamKind::Vec(t) => quote!(::std::vec::Vec<#t>),
            ParamKind::Str => quote!(::std::string::String),
        };
        quote!(#index => ::rask::__private::decode_arg::<#t>(bytes),)
    });
    // Every argument and result type can arrive from another process: register its decoder.
    let mut wire_types: Vec<TokenStream2> = vec![quote!(#output)];
    for (_, kind) in &params {
        match kind {
            ParamKind::Ref(t) | ParamKind::Owned(t) => wire_types.push(quote!(#t)),
            ParamKind::Slice(t) | ParamKind::Vec(t) => {
                wire_types.push(quote!(#t));
                wire_types.push(quote!(::std::vec::Vec<#t>));
            }
            ParamKind::Str => wire_types.push(quote!(::std::string::String)),
        }
    }
    let doc = format!("The lazy form of [`{name}`](fn@super::{name}), made by `#[rask::delayed]`.");
    let lazy_doc = format!("Calls `{name}` lazily: returns a `Delayed` and runs nothing.");

    Ok(quote! {
        #[doc = #doc]
        #[allow(non_snake_case, unused_imports, clippy::all)]
        #vis mod #name {
            use super::*;

            /// The name this function is registered under.
            pub const NAME: &str = module_path!();

            #[doc = #lazy_doc]
            pub fn lazy(#(#lazy_params),*) -> ::rask::Delayed<#output> {
                ::rask::__private::call_registered::<#output>(
                    NAME,
                    stringify!(#name),
                    ::std::vec![#(#lazy_args),*],
                    #pure,
                )
            }

            fn __call(args: &[::rask::Value]) -> ::rask::TaskResult {
                if args.len() != #arity {
                    return Err(::rask::TaskError::msg(format!("`{}` takes {} arguments but was given {}", NAME, #arity, args.len())));
                }
                #(#extract)*
                let output: #output = #call;
                Ok(::rask::__private::output(output))
            }

            fn __decode(index: usize, bytes: &[u8]) -> ::rask::Result<::rask::Value> {
                match index {
                    #(#decode_arms)*
                    _ => Err(::rask::__private::no_such_argument(NAME, index)),
                }
            }

            #(
                ::rask::__private::inventory::submit! {
                    ::rask::__private::TypeCodec {
                        type_name: ::std::any::type_name::<#wire_types>,
                        decode: ::rask::__private::decode_arg::<#wire_types>,
                    }
                }
            )*

            ::rask::__private::inventory::submit! {
                ::rask::__private::RegisteredFunction {
                    name: NAME,
                    call: __call,
                    arity: Some(#arity),
                    decode_arg: __decode,
                }
            }
        }
    })
}

fn param_kind(ty: &Type) -> ParamKind {
    match ty {
        Type::Reference(reference) => match &*reference.elem {
            Type::Slice(slice) => ParamKind::Slice((*slice.elem).clone()),
            Type::Path(path) if path.path.is_ident("str") => ParamKind::Str,
            elem => ParamKind::Ref(elem.clone()),
        },
        _ => match single_generic(ty, "Vec") {
            Some(elem) => ParamKind::Vec(elem),
            None => ParamKind::Owned(ty.clone()),
        },
    }
}

/// `T` of `Result<T, ..>` (any path ending in `Result`, such as `anyhow::Result<T>`).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

fn single_generic(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.first()? {
        GenericArgument::Type(t) if args.args.len() == 1 => Some(t.clone()),
        _ => None,
    }
}
