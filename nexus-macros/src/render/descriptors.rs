//! Descriptors: the service type (`<Trait>Service`, implementing `Service`) and one unit struct
//! per operation in the module `<trait_snake_case>` (implementing `Operation`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use crate::model::Service;

pub(crate) fn render(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let vis = &service.item.vis;
    let trait_ident = &service.item.ident;
    let service_ident = &service.service_ident;
    let module = &service.module_ident;
    let wire_name = &service.wire_name;
    let description = &service.description;
    let service_doc = format!(
        "The `{wire_name}` Nexus service: its wire name and definition (see [`{trait_ident}`]), and \
         [`{service_ident}::handler`] to serve an implementation."
    );
    let module_doc = format!(
        "Operation descriptors of the `{wire_name}` Nexus service, one unit struct per operation."
    );
    let definition = super::definition::body(service);

    let structs = service.operations.iter().map(|op| {
        let cfgs = &op.cfgs;
        let descriptor = &op.descriptor;
        let doc = format!(
            "The `{}` operation of the `{wire_name}` service (method [`{trait_ident}::{}`](super::{trait_ident}::{})).",
            op.wire_name, op.method, op.method
        );
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[derive(
                ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default,
                ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash
            )]
            pub struct #descriptor;
        }
    });
    let impls = service.operations.iter().map(|op| {
        let cfgs = &op.cfgs;
        let descriptor = &op.descriptor;
        let op_wire = &op.wire_name;
        let op_description = &op.description;
        let input = op.input_type();
        let output = &op.output;
        // Spanned on the user's types, so an unsatisfied bound points at them.
        let input_ty = match &op.input {
            Some((_, ty)) => quote_spanned!(ty.span()=> #ty),
            None => quote!(()),
        };
        let output_ty = quote_spanned!(output.span()=> #output);
        let _ = input;
        quote! {
            #(#cfgs)*
            impl #krate::Operation for #module::#descriptor {
                type Service = #service_ident;
                type Input = #input_ty;
                type Output = #output_ty;
                const NAME: &'static str = #op_wire;
                const DESCRIPTION: &'static str = #op_description;
            }
        }
    });

    quote! {
        #[doc = #module_doc]
        #vis mod #module {
            #(#structs)*
        }

        #(#impls)*

        #[doc = #service_doc]
        #[derive(
            ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default,
            ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash
        )]
        #vis struct #service_ident;

        impl #krate::Service for #service_ident {
            const NAME: &'static str = #wire_name;
            const DESCRIPTION: &'static str = #description;
            fn definition() -> #krate::definition::Definition {
                #definition
            }
        }
    }
}
