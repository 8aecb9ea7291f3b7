//! The caller stub: `<Trait>Client`, one method per operation returning a `Call`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use crate::model::Service;

pub(crate) fn render(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let vis = &service.item.vis;
    let trait_ident = &service.item.ident;
    let client = &service.client_ident;
    let service_ident = &service.service_ident;
    let module = &service.module_ident;
    let doc = format!(
        "Typed caller stub of the `{}` Nexus service (see [`{trait_ident}`]).\n\n\
         Each method returns a [`Call`]({krate}::Call): `.await` it for the result (sync or async \
         alike), or `.start()` it for a handle with the operation token, `result()` and `cancel()`.",
        service.wire_name,
        krate = krate.to_string().replace(' ', ""),
    );

    let methods = service.operations.iter().map(|op| {
        let cfgs = &op.cfgs;
        let docs = &op.docs;
        let method = &op.method;
        let descriptor = &op.descriptor;
        let wire = format!("Calls the `{}` operation.", op.wire_name);
        let separator = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
        match &op.input {
            Some((name, ty)) => {
                // Spanned on the input type: if it is not a payload, the error here is identical to
                // the one at the descriptor, and rustc reports it once.
                let body =
                    quote_spanned!(ty.span()=> self.inner.call::<#module::#descriptor>(#name));
                quote! {
                    #(#cfgs)*
                    #(#docs)*
                    #separator
                    #[doc = #wire]
                    pub fn #method(&self, #name: #ty) -> #krate::Call<#module::#descriptor> {
                        #body
                    }
                }
            }
            None => quote! {
                #(#cfgs)*
                #(#docs)*
                #separator
                #[doc = #wire]
                pub fn #method(&self) -> #krate::Call<#module::#descriptor> {
                    self.inner.call::<#module::#descriptor>(())
                }
            },
        }
    });

    // Methods of an invalid contract: the name and arity as written, any output type.
    let stubs = service.stubs.iter().map(|stub| {
        let cfgs = &stub.cfgs;
        let method = &stub.method;
        let input = stub
            .has_input
            .then(|| quote!(, _input: impl ::core::marker::Sized));
        quote! {
            #(#cfgs)*
            #[doc(hidden)]
            pub fn #method<__Output>(&self #input) -> #krate::__private::InvalidCall<__Output> {
                #krate::__private::InvalidCall::new()
            }
        }
    });

    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #client {
            inner: #krate::ServiceClient,
        }

        impl #client {
            /// A stub calling the service on `endpoint` through `client`.
            pub fn new(
                client: #krate::Client,
                endpoint: impl ::core::convert::Into<#krate::__private::String>,
            ) -> Self {
                Self { inner: client.service::<#service_ident>(endpoint) }
            }

            /// The endpoint this stub calls.
            pub fn endpoint(&self) -> &str {
                self.inner.endpoint()
            }

            /// The untyped service client underneath.
            pub fn service_client(&self) -> &#krate::ServiceClient {
                &self.inner
            }

            #(#methods)*
            #(#stubs)*
        }
    }
}
