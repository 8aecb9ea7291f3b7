//! The handler side: `<Trait>Service::handler(impl)`, an object-safe dispatch table keyed by wire
//! names. Its adapter type is hidden inside a `const _` block.

use proc_macro2::TokenStream;
use quote::quote;

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
        let call = match &op.input {
            Some(_) => quote! {
                move |ctx, input| async move { #trait_ident::#method(&*handler, ctx, input).await }
            },
            None => quote! {
                move |ctx, _: ()| async move { #trait_ident::#method(&*handler, ctx).await }
            },
        };
        quote! {
            #(#cfgs)*
            #wire => {
                let handler = ::core::clone::Clone::clone(&self.0);
                ::core::option::Option::Some(
                    #krate::__private::typed_start::<#module::#descriptor, _, _>(ctx, input, #call)
                )
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
