//! The user's trait, as emitted.
//!
//! The trait keeps every item, attribute and argument as written, with two changes: the
//! `#[operation]` helper attributes are consumed, and each `async fn` declares that its future is
//! `Send` (`fn op(..) -> impl Future<Output = R> + Send`), because handlers run on a multi-threaded
//! runtime. An implementation still writes `async fn`, exactly as the contract reads.

use proc_macro2::TokenStream;
use quote::quote;

use crate::attrs::OPERATION_ATTR;
use crate::model::Service;

fn strip_helper_attrs(item: &mut syn::ItemTrait) {
    for trait_item in &mut item.items {
        if let syn::TraitItem::Fn(method) = trait_item {
            method.attrs.retain(|a| !a.path().is_ident(OPERATION_ATTR));
        }
    }
}

/// The trait of a valid service.
pub(crate) fn emit(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    strip_helper_attrs(&mut item);
    for trait_item in &mut item.items {
        if let syn::TraitItem::Fn(method) = trait_item {
            let output = match &method.sig.output {
                syn::ReturnType::Type(_, ty) => quote!(#ty),
                syn::ReturnType::Default => quote!(()),
            };
            method.sig.asyncness = None;
            method.sig.output = syn::parse_quote! {
                -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
            };
        }
    }
    quote!(#item)
}

/// The trait of an invalid service: as written, minus what would only add follow-on errors from
/// rustc (helper attributes, `const` on a method, patterns in argument position).
pub(crate) fn sanitized(item: &syn::ItemTrait) -> TokenStream {
    let mut item = item.clone();
    strip_helper_attrs(&mut item);
    for trait_item in &mut item.items {
        if let syn::TraitItem::Fn(method) = trait_item {
            method.sig.constness = None;
            if method.default.is_some() {
                continue;
            }
            for arg in &mut method.sig.inputs {
                if let syn::FnArg::Typed(t) = arg {
                    match &mut *t.pat {
                        syn::Pat::Ident(p) if p.subpat.is_none() => {
                            p.by_ref = None;
                            p.mutability = None;
                        }
                        syn::Pat::Wild(_) => {}
                        other => *other = syn::parse_quote!(_),
                    }
                }
            }
        }
    }
    quote!(#item)
}
