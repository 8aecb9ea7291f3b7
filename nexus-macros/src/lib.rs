//! The `#[nexus_service]` attribute macro. Use it through `nexus_runtime::nexus_service`, whose
//! documentation describes what it generates.
//!
//! The crate reads as a pipeline:
//! [`attrs`] (darling) → [`model`] (a validated service, errors collected with spans) →
//! [`render`] (trait, descriptors, client, handler, definition).
//! On any error the user's trait is still emitted, so one mistake gives one compile error.

mod attrs;
mod diagnostics;
mod docs;
mod model;
mod naming;
mod render;

use proc_macro::TokenStream;

/// Turns a trait into a Nexus service contract. See `nexus_runtime::nexus_service` for the full
/// documentation.
#[proc_macro_attribute]
pub fn nexus_service(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into()).into()
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let item_trait: syn::ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        // Not a trait at all: say where the attribute goes. (A trait that does not parse keeps
        // syn's message, followed by the item as written so rustc reports the syntax error too.)
        Err(e) if !is_trait(&item) => {
            let message = format!(
                "{e}: `#[nexus_service]` goes on a trait whose methods are the operations, such as \
                 `pub trait Orders {{ async fn place(&self, ctx: OperationContext, input: Order) \
                 -> OperationResult<Receipt>; }}`"
            );
            let mut out = syn::Error::new(e.span(), message).to_compile_error();
            out.extend(item);
            return out;
        }
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    match model::Service::build(args, &item_trait) {
        Ok(service) => render::service(&service),
        Err(errors) => {
            let mut out = render::trait_def::sanitized(&item_trait);
            out.extend(errors);
            out
        }
    }
}

/// Whether the item's top-level tokens include the `trait` keyword.
fn is_trait(item: &proc_macro2::TokenStream) -> bool {
    item.clone()
        .into_iter()
        .any(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "trait"))
}
