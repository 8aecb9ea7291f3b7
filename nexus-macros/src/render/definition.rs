//! The body of `Service::definition()`: a builder call per operation.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Service;

pub(crate) fn body(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let module = &service.module_ident;
    let operations = service.operations.iter().map(|op| {
        let cfgs = &op.cfgs;
        let descriptor = &op.descriptor;
        quote! {
            #(#cfgs)*
            {
                builder = builder.operation::<#module::#descriptor>();
            }
        }
    });
    quote! {
        let mut builder = #krate::definition::DefinitionBuilder::new::<Self>();
        #(#operations)*
        builder.build()
    }
}
