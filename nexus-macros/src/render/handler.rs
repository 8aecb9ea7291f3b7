//! The handler side: `<Trait>Service::handler(impl)`, an object-safe dispatch table keyed by wire
//! names. Its adapter type is hidden inside a `const _` block.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use crate::model::Service;

pub(crate) fn render(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let trait_ident = &service.item.ident;
    let service_ident = &service.service_ident;
    let module = &service.module_ident;

    let names = service.operations.iter().map(|op| {
        let cfgs = &op.cfgs;
        let wire = &op.wire_name;
        quote! {
            #(#cfgs)*
            names.push(#wire);
        }
    });
    let arms = service.operations.iter().map(|op| {
        let cfgs = &op.cfgs;
        let wire = &op.wire_name;
        let method = &op.method;
        let descriptor = &op.descriptor;
        // The two halves of a start are spanned on the user's output and input types: each
        // normalizes only its own type, so a type that is not a payload gives the same error as
        // at the descriptor, at the same place, and rustc reports it once.
        let out_span = op.output.span();
        let in_span = op
            .input
            .as_ref()
            .map_or_else(Span::call_site, |(_, ty)| ty.span());
        let krate_out = super::respan(krate, out_span);
        let krate_in = super::respan(krate, in_span);
        let run = match &op.input {
            Some(_) => quote! {
                move |ctx, input| async move { #trait_ident::#method(&*handler, ctx, input).await }
            },
            None => quote! {
                move |ctx, _: ()| async move { #trait_ident::#method(&*handler, ctx).await }
            },
        };
        let run = quote_spanned! {out_span=>
            #krate_out::__private::encode_output::<#module::#descriptor, _, _, _>(#run)
        };
        let start = quote_spanned! {in_span=>
            #krate_in::__private::decode_input::<#module::#descriptor, _>(ctx, input, #run)
        };
        quote! {
            #(#cfgs)*
            #wire => {
                let handler = ::core::clone::Clone::clone(&self.0);
                ::core::option::Option::Some(#start)
            }
        }
    });

    quote! {
        const _: () = {
            struct __NexusHandler<H>(#krate::__private::Arc<H>);

            impl<H> #krate::__private::ServiceHandler for __NexusHandler<H>
            where
                H: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                fn name(&self) -> &str {
                    <#service_ident as #krate::Service>::NAME
                }

                fn operation_names(&self) -> #krate::__private::Vec<&str> {
                    let mut names = #krate::__private::Vec::new();
                    #(#names)*
                    names
                }

                fn start(
                    &self,
                    operation: &str,
                    ctx: #krate::OperationContext,
                    input: #krate::__private::Content,
                ) -> ::core::option::Option<#krate::__private::StartFuture> {
                    match operation {
                        #(#arms)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            impl #service_ident {
                /// The dispatch table of this service over `handler`, to register with a
                /// dispatcher or server.
                pub fn handler<H>(handler: H) -> impl #krate::__private::ServiceHandler
                where
                    H: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
                {
                    __NexusHandler(#krate::__private::Arc::new(handler))
                }

                /// Like [`handler`](Self::handler), for an implementation already in an `Arc`.
                pub fn handler_arc<H>(handler: #krate::__private::Arc<H>) -> impl #krate::__private::ServiceHandler
                where
                    H: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
                {
                    __NexusHandler(handler)
                }
            }
        };
    }
}

/// `<Trait>Service::handler` of an invalid contract: the same constructors, returning a handler
/// that serves nothing (the contract does not compile, so it never runs).
pub(crate) fn render_stub(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let service_ident = &service.service_ident;
    quote! {
        impl #service_ident {
            #[doc(hidden)]
            pub fn handler<H>(_handler: H) -> #krate::__private::InvalidHandler {
                #krate::__private::InvalidHandler
            }

            #[doc(hidden)]
            pub fn handler_arc<H>(_handler: #krate::__private::Arc<H>) -> #krate::__private::InvalidHandler {
                #krate::__private::InvalidHandler
            }
        }
    }
}
