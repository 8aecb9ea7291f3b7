//! Renders a validated [`Service`] into Rust: the trait itself, operation descriptors, the caller
//! stub, the handler dispatch table and the definition. Generated code uses absolute paths only
//! (`::core::`, the runtime crate), so it compiles under `#![no_implicit_prelude]`.

mod client;
mod definition;
mod descriptors;
mod handler;
pub(crate) mod trait_def;

use proc_macro2::TokenStream;

use crate::model::Service;

/// Everything generated for a valid service.
pub(crate) fn service(service: &Service) -> TokenStream {
    let mut out = trait_def::emit(service);
    out.extend(descriptors::render(service));
    out.extend(client::render(service));
    out.extend(handler::render(service));
    out
}
