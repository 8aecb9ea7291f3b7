//! Renders a validated [`Service`] into Rust: the trait itself, operation descriptors, the caller
//! stub, the handler dispatch table and the definition. Generated code uses absolute paths only
//! (`::core::`, the runtime crate), so it compiles under `#![no_implicit_prelude]`.

mod client;
mod definition;
mod descriptors;
mod handler;
pub(crate) mod trait_def;

use proc_macro2::{Span, TokenStream, TokenTree};

use crate::model::{Invalid, Service};

/// Everything generated for a valid service.
pub(crate) fn service(service: &Service) -> TokenStream {
    let mut out = trait_def::emit(service);
    out.extend(descriptors::render(service));
    out.extend(client::render(service));
    out.extend(handler::render(service));
    out
}

/// What stands in for the generated items of an invalid contract (after its errors): the
/// descriptors and client methods of the valid operations when the trait itself is valid, and
/// stubs of the rest (a descriptor type and a client method per invalid method, a handler
/// constructor), so that user code naming them gets no second wave of errors.
pub(crate) fn invalid(invalid: &Invalid) -> TokenStream {
    let service = &invalid.service;
    let mut out = descriptors::render(service);
    out.extend(client::render(service));
    out.extend(handler::render_stub(service));
    out
}

/// `tokens` with every span set to `span`, so that an error rustc reports in generated code lands
/// at a chosen place in the user's code.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
