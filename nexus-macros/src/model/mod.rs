//! The validated model of a service: everything the renderers need, checked once, with every
//! problem reported at the offending token together with what to write instead.

mod names;
mod signature;

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::attrs;
use crate::diagnostics::Diagnostics;
use crate::{docs, naming};
use names::{CLIENT_METHODS, check_reserved, check_wire_name};

/// A validated service.
pub(crate) struct Service {
    /// The runtime crate path (`::nexus_runtime` or what Cargo.toml / `crate = ...` says).
    pub krate: TokenStream,
    pub item: syn::ItemTrait,
    pub wire_name: String,
    pub description: String,
    pub service_ident: syn::Ident,
    pub client_ident: syn::Ident,
    pub module_ident: syn::Ident,
    pub operations: Vec<Operation>,
    /// Methods that are not valid operations (each with an error recorded): an invalid contract
    /// still gets a client method and a descriptor type of that name, so that user code naming
    /// them reports no second wave of errors.
    pub stubs: Vec<StubMethod>,
}

/// A method of an invalid contract that is not a valid operation.
pub(crate) struct StubMethod {
    pub method: syn::Ident,
    pub descriptor: syn::Ident,
    /// Whether the method takes an input after the context.
    pub has_input: bool,
    pub cfgs: Vec<syn::Attribute>,
}

/// An invalid contract: the errors, and the model of what is valid in it, from which stubs of
/// the generated items are rendered.
pub(crate) struct Invalid {
    pub errors: TokenStream,
    /// The valid operations (rendered in full when the trait itself is valid: its attribute
    /// arguments, generics and supertraits) and stubs of the rest.
    pub service: Service,
}

/// A validated operation.
pub(crate) struct Operation {
    pub method: syn::Ident,
    pub wire_name: String,
    pub description: String,
    pub descriptor: syn::Ident,
    /// `#[cfg]` and `#[cfg_attr]` attributes to copy onto every generated item for the operation.
    pub cfgs: Vec<syn::Attribute>,
    /// `#[doc]` attributes.
    pub docs: Vec<syn::Attribute>,
    /// The input argument (name and type), or `None` for an operation without input.
    pub input: Option<(syn::Ident, syn::Type)>,
    pub output: syn::Type,
}

impl Service {
    /// Validates the trait and its attribute arguments.
    pub fn build(args: TokenStream, item: &syn::ItemTrait) -> Result<Service, Box<Invalid>> {
        let mut diags = Diagnostics::default();
        let args = attrs::service_args(args, &mut diags);
        let krate = runtime_path(args.krate);
        check_trait_shape(item, &mut diags);

        let wire_name = match &args.name {
            Some(name) => {
                check_wire_name(name.as_str(), name.span(), "service", &mut diags);
                name.as_str().to_owned()
            }
            None => naming::unraw(&item.ident),
        };

        let mut operations: Vec<Operation> = Vec::new();
        let mut wire_names: HashMap<String, syn::Ident> = HashMap::new();
        let mut descriptors: HashMap<String, syn::Ident> = HashMap::new();
        let trait_valid = !diags.has_errors();
        let mut stubs = Vec::new();
        for trait_item in &item.items {
            let Some(op) = operation(trait_item, &krate, &mut diags) else {
                stubs.extend(stub_method(trait_item));
                continue;
            };
            if let Some(previous) = wire_names.get(&op.wire_name) {
                diags.error(
                    &op.method,
                    format!(
                        "operation name `{}` is already used by method `{previous}`; give one of \
                         them another name with `#[operation(name = \"...\")]`",
                        op.wire_name
                    ),
                );
                stubs.extend(stub_method(trait_item));
                continue;
            }
            if let Some(previous) = descriptors.get(&op.descriptor.to_string()) {
                diags.error(
                    &op.method,
                    format!(
                        "methods `{previous}` and `{}` both make the descriptor type `{}::{}`; \
                         rename one of the methods",
                        op.method,
                        naming::module_name(&item.ident),
                        op.descriptor
                    ),
                );
                stubs.extend(stub_method(trait_item));
                continue;
            }
            wire_names.insert(op.wire_name.clone(), op.method.clone());
            descriptors.insert(op.descriptor.to_string(), op.method.clone());
            operations.push(op);
        }
        if operations.is_empty() && !diags.has_errors() {
            diags.error(
                &item.ident,
                "a service needs at least one operation; add one such as \
                 `async fn ping(&self, ctx: OperationContext) -> OperationResult<()>;`",
            );
        }

        let service = Service {
            krate,
            item: item.clone(),
            wire_name,
            description: docs::collect(&item.attrs),
            service_ident: format_ident!("{}Service", naming::unraw(&item.ident)),
            client_ident: format_ident!("{}Client", naming::unraw(&item.ident)),
            module_ident: format_ident!("{}", naming::module_name(&item.ident)),
            operations,
            stubs,
        };
        diags.finish(service).map_err(|(errors, service)| {
            let mut service = *service;
            // Stub names must not collide with each other, with valid operations' names or with
            // the client's own methods.
            let mut methods: Vec<String> = CLIENT_METHODS.iter().map(|m| (*m).to_owned()).collect();
            let mut types: Vec<String> = Vec::new();
            for op in &service.operations {
                methods.push(op.method.to_string());
                types.push(op.descriptor.to_string());
            }
            service.stubs.retain(|stub| {
                let fresh = !methods.contains(&stub.method.to_string())
                    && !types.contains(&stub.descriptor.to_string());
                methods.push(stub.method.to_string());
                types.push(stub.descriptor.to_string());
                fresh
            });
            if !trait_valid {
                // Nothing is rendered in full: every method becomes a stub.
                let valid = std::mem::take(&mut service.operations);
                let mut all: Vec<StubMethod> = valid
                    .into_iter()
                    .map(|op| StubMethod {
                        has_input: op.input.is_some(),
                        method: op.method,
                        descriptor: op.descriptor,
                        cfgs: op.cfgs,
                    })
                    .collect();
                all.append(&mut service.stubs);
                service.stubs = all;
            }
            Box::new(Invalid { errors, service })
        })
    }
}

/// The stub of an invalid method: its name, descriptor and arity as written.
fn stub_method(item: &syn::TraitItem) -> Option<StubMethod> {
    let syn::TraitItem::Fn(method) = item else {
        return None;
    };
    let typed = method
        .sig
        .inputs
        .iter()
        .filter(|arg| matches!(arg, syn::FnArg::Typed(_)))
        .count();
    Some(StubMethod {
        method: method.sig.ident.clone(),
        descriptor: format_ident!(
            "{}",
            naming::descriptor_name(&method.sig.ident),
            span = method.sig.ident.span()
        ),
        has_input: typed >= 2,
        cfgs: method
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
            .cloned()
            .collect(),
    })
}

fn check_trait_shape(item: &syn::ItemTrait, diags: &mut Diagnostics) {
    check_generics(
        &item.generics,
        "a service trait",
        "a contract has one fixed wire schema",
        diags,
    );
    if let Some(unsafety) = &item.unsafety {
        diags.error(
            unsafety,
            "a service trait cannot be `unsafe`; remove `unsafe`",
        );
    }
    if !item.supertraits.is_empty() {
        diags.error(
            &item.supertraits,
            "supertraits are not supported on a service trait; remove `: ...` (the dispatcher \
             already requires `Send + Sync + 'static` of the implementation)",
        );
    }
    let name = naming::unraw(&item.ident);
    check_reserved(&name, item.ident.span(), "trait", diags);
}

/// Validates one trait item; `None` if it is not a usable operation (errors recorded).
fn operation(
    item: &syn::TraitItem,
    krate: &TokenStream,
    diags: &mut Diagnostics,
) -> Option<Operation> {
    let method = match item {
        syn::TraitItem::Fn(method) => method,
        syn::TraitItem::Const(c) => {
            diags.error(
                &c.ident,
                "associated consts are not supported in a service trait; declare the const next to the trait",
            );
            return None;
        }
        syn::TraitItem::Type(t) => {
            diags.error(
                &t.ident,
                "associated types are not supported in a service trait; use concrete input and output types",
            );
            return None;
        }
        syn::TraitItem::Macro(m) => {
            diags.error(
                &m.mac,
                "macro invocations are not supported in a service trait; write each operation out",
            );
            return None;
        }
        other => {
            diags.error(
                other,
                "unsupported item in a service trait; only `async fn` operations are allowed",
            );
            return None;
        }
    };
    let before = diags.len();
    let sig = &method.sig;
    let args = attrs::operation_args(&method.attrs, diags);
    let method_name = naming::unraw(&sig.ident);

    if sig.asyncness.is_none() {
        diags.error(
            sig.fn_token,
            format!("operation `{method_name}` must be an `async fn`; write `async fn {method_name}(...)`"),
        );
    }
    if let Some(constness) = &sig.constness {
        diags.error(
            constness,
            "an operation cannot be `const fn`; remove `const`",
        );
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        diags.error(
            unsafety,
            "an operation cannot be `unsafe fn`; remove `unsafe`",
        );
    }
    if let Some(abi) = &sig.abi {
        diags.error(abi, "an operation cannot declare an ABI; remove `extern`");
    }
    check_generics(
        &sig.generics,
        &format!("operation `{method_name}`"),
        "each operation has one wire schema",
        diags,
    );
    if let Some(variadic) = &sig.variadic {
        diags.error(variadic, "an operation cannot be variadic");
    }
    if let Some(body) = &method.default {
        diags.error_at(
            body.brace_token.span.join(),
            format!(
                "operation `{method_name}` cannot have a default body: the handler implements every \
                 operation; end the declaration with `;`"
            ),
        );
    }
    check_reserved(&method_name, sig.ident.span(), "method", diags);
    if CLIENT_METHODS.contains(&method_name.as_str()) {
        diags.error(
            &sig.ident,
            format!(
                "a method named `{method_name}` collides with the generated client's `{method_name}`; \
                 rename the method and keep the wire name with `#[operation(name = \"{}\")]`",
                naming::operation_wire_name(&sig.ident)
            ),
        );
    }

    let signature::Signature { input, output } = signature::check(sig, &method_name, krate, diags);

    let wire_name = match &args.name {
        Some(name) => {
            check_wire_name(name.as_str(), name.span(), "operation", diags);
            name.as_str().to_owned()
        }
        None => naming::operation_wire_name(&sig.ident),
    };

    if diags.len() != before {
        return None;
    }
    let cfgs = method
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
        .cloned()
        .collect();
    Some(Operation {
        method: sig.ident.clone(),
        wire_name,
        description: docs::collect(&method.attrs),
        descriptor: format_ident!(
            "{}",
            naming::descriptor_name(&sig.ident),
            span = sig.ident.span()
        ),
        cfgs,
        docs: docs::attrs(&method.attrs).into_iter().cloned().collect(),
        input,
        output: output?,
    })
}

/// Rejects generic parameters and where clauses on the trait (`what` = "a service trait") or a
/// method, with a message for lifetimes (inputs and outputs are owned) and one for the rest.
fn check_generics(generics: &syn::Generics, what: &str, why: &str, diags: &mut Diagnostics) {
    if let Some(lifetime) = generics.lifetimes().next() {
        diags.error(
            lifetime,
            format!(
                "lifetime parameters are not supported on {what}: inputs and outputs are owned \
                 values decoded from JSON; remove `{}` and use owned types",
                lifetime.lifetime
            ),
        );
    } else if !generics.params.is_empty() {
        diags.error(
            &generics.params,
            format!(
                "generic parameters are not supported on {what}: {why}; remove them and use \
                 concrete input and output types"
            ),
        );
    }
    if let Some(where_clause) = &generics.where_clause {
        diags.error(
            where_clause,
            format!("`where` clauses are not supported on {what}; remove the `where` clause"),
        );
    }
}

/// Where the runtime crate is: `crate = ...` if given, else what the invoking crate's Cargo.toml
/// calls `nexus-rpc-runtime`, else `::nexus_runtime`.
fn runtime_path(explicit: Option<syn::Path>) -> TokenStream {
    if let Some(path) = explicit {
        return quote!(#path);
    }
    match proc_macro_crate::crate_name("nexus-rpc-runtime") {
        // Not renamed: Cargo names the crate after its library, `nexus_runtime`.
        Ok(proc_macro_crate::FoundCrate::Name(name)) if name == "nexus_rpc_runtime" => {
            quote!(::nexus_runtime)
        }
        Ok(proc_macro_crate::FoundCrate::Name(name)) => {
            let ident = format_ident!("{}", name);
            quote!(::#ident)
        }
        // `Itself` is the runtime's own tests and docs, which see it as `nexus_runtime`
        // (it declares `extern crate self as nexus_runtime`).
        Ok(proc_macro_crate::FoundCrate::Itself) | Err(_) => quote!(::nexus_runtime),
    }
}
