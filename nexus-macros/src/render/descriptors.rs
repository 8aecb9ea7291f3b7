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

    let inner_vis = nested_visibility(vis);
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
            #inner_vis struct #descriptor;
        }
    });
    // Methods of an invalid contract: a type of the name, no `Operation` impl.
    let stubs = service.stubs.iter().map(|stub| {
        let cfgs = &stub.cfgs;
        let descriptor = &stub.descriptor;
        quote! {
            #(#cfgs)*
            #[doc(hidden)]
            #inner_vis struct #descriptor;
        }
    });
    let impls = service.operations.iter().map(|op| {
        let cfgs = &op.cfgs;
        let descriptor = &op.descriptor;
        let op_wire = &op.wire_name;
        let op_description = &op.description;
        // Each payload type goes through `IsPayload`, spanned on the user's type: the one place
        // where a type that is not a payload is reported.
        let checked = |name: &str, ty: &syn::Type| {
            let name = syn::Ident::new(name, ty.span());
            quote_spanned!(ty.span()=> type #name = <#ty as #krate::__private::IsPayload>::Type;)
        };
        let input_ty = match &op.input {
            Some((_, ty)) => checked("Input", ty),
            None => quote!(
                type Input = ();
            ),
        };
        let output_ty = checked("Output", &op.output);
        quote! {
            #(#cfgs)*
            impl #krate::Operation for #module::#descriptor {
                type Service = #service_ident;
                #input_ty
                #output_ty
                const NAME: &'static str = #op_wire;
                const DESCRIPTION: &'static str = #op_description;
            }
        }
    });

    quote! {
        #[doc = #module_doc]
        #vis mod #module {
            #(#structs)*
            #(#stubs)*
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

/// The visibility, inside the descriptor module, that matches the trait's visibility outside it:
/// a descriptor must not be more visible than the `<Trait>Service` its `Operation` impl names.
fn nested_visibility(vis: &syn::Visibility) -> TokenStream {
    match vis {
        syn::Visibility::Public(_) => quote!(pub),
        syn::Visibility::Inherited => quote!(pub(super)),
        syn::Visibility::Restricted(restricted) => {
            let path = &restricted.path;
            let first = path.segments.first().map(|s| s.ident.to_string());
            match first.as_deref() {
                Some("crate") if path.leading_colon.is_none() => quote!(pub(in #path)),
                Some("self") => {
                    let rest = path.segments.iter().skip(1);
                    quote!(pub(in super #(::#rest)*))
                }
                // `super` and other relative paths: one more `super` from inside the module.
                _ => quote!(pub(in super::#path)),
            }
        }
    }
}
