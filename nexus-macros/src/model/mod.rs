//! The validated model of a service: everything the renderers need, checked once, with every
//! problem reported at the offending token together with what to write instead.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

use crate::attrs;
use crate::diagnostics::Diagnostics;
use crate::{docs, naming};

/// Name prefixes reserved by Temporal and by this crate.
const RESERVED_PREFIXES: &[(&str, &str)] = &[("__temporal_", "Temporal"), ("__nexus", "nexus-rs")];

/// Inherent methods of the generated client; an operation method cannot share their names.
const CLIENT_METHODS: &[&str] = &["new", "endpoint", "service_client"];

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

impl Operation {
    /// The input type, `()` when the operation has no input argument.
    pub fn input_type(&self) -> TokenStream {
        match &self.input {
            Some((_, ty)) => quote!(#ty),
            None => quote!(()),
        }
    }
}

impl Service {
    /// Validates the trait and its attribute arguments.
    pub fn build(args: TokenStream, item: &syn::ItemTrait) -> Result<Service, TokenStream> {
        let mut diags = Diagnostics::default();
        let args = attrs::service_args(args, &mut diags);
        check_trait_shape(item, &mut diags);

        let wire_name = match &args.name {
            Some(name) => {
                check_wire_name(name.as_str(), name.span(), "service", &mut diags);
                name.as_str().to_owned()
            }
            None => naming::unraw(&item.ident),
        };

        let mut operations = Vec::new();
        let mut wire_names: HashMap<String, syn::Ident> = HashMap::new();
        for trait_item in &item.items {
            let Some(op) = operation(trait_item, &mut diags) else {
                continue;
            };
            if let Some(previous) = wire_names.get(&op.wire_name) {
                diags.error(
                    &op.method,
                    format!(
                        "operation name `{}` is already used by `{previous}`; give one of them another \
                         name with `#[operation(name = \"...\")]`",
                        op.wire_name
                    ),
                );
                continue;
            }
            wire_names.insert(op.wire_name.clone(), op.method.clone());
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
            krate: runtime_path(args.krate),
            item: item.clone(),
            wire_name,
            description: docs::collect(&item.attrs),
            service_ident: format_ident!("{}Service", naming::unraw(&item.ident)),
            client_ident: format_ident!("{}Client", naming::unraw(&item.ident)),
            module_ident: format_ident!("{}", naming::module_name(&item.ident)),
            operations,
        };
        diags.finish(service)
    }
}

fn check_trait_shape(item: &syn::ItemTrait, diags: &mut Diagnostics) {
    let generics = &item.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        diags.error(
            generics,
            "generic service traits are not supported: a contract has one fixed wire schema; \
             remove the generic parameters and use concrete input and output types",
        );
    }
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
fn operation(item: &syn::TraitItem, diags: &mut Diagnostics) -> Option<Operation> {
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
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        diags.error(
            &sig.generics,
            format!(
                "operation `{method_name}` cannot be generic: each operation has one wire schema; \
                 use concrete input and output types"
            ),
        );
    }
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
                 rename the method and keep the wire name with `#[operation(name = \"{method_name}\")]`"
            ),
        );
    }

    let (input, output) = signature(sig, &method_name, diags);

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

/// Checks `(&self, ctx: OperationContext[, input: T]) -> OperationResult<O>`; returns the input
/// argument and the output type.
fn signature(
    sig: &syn::Signature,
    method_name: &str,
    diags: &mut Diagnostics,
) -> (Option<(syn::Ident, syn::Type)>, Option<syn::Type>) {
    let usage = format!(
        "`async fn {method_name}(&self, ctx: OperationContext, input: Input) -> OperationResult<Output>`"
    );
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(syn::FnArg::Receiver(receiver)) => check_receiver(receiver, diags),
        Some(syn::FnArg::Typed(arg)) => {
            diags.error(
                arg,
                format!("operation `{method_name}` must take `&self` first; write {usage}"),
            );
        }
        None => diags.error_at(
            sig.paren_token.span.join(),
            format!("operation `{method_name}` must take `&self` and a context; write {usage}"),
        ),
    }
    let typed: Vec<&syn::PatType> = inputs
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) => Some(t),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();

    match typed.first() {
        None => diags.error_at(
            sig.paren_token.span.join(),
            format!(
                "operation `{method_name}` is missing its context argument; write {usage} \
                 (the input may be omitted for an operation without input)"
            ),
        ),
        Some(first) if !is_context_type(&first.ty) => diags.error(
            &first.ty,
            format!(
                "operation `{method_name}` is missing its context argument: the first argument after \
                 `&self` must be `ctx: OperationContext`; write {usage}"
            ),
        ),
        Some(_) => {}
    }
    for arg in &typed {
        check_pattern(&arg.pat, &arg.ty, diags);
    }
    if let Some(extra) = typed.get(2) {
        let names: Vec<String> = typed[1..].iter().map(|a| quote!(#a).to_string()).collect();
        diags.error(
            extra,
            format!(
                "operation `{method_name}` takes one input, but has {} ({}); bundle them into one \
                 struct input",
                typed.len() - 1,
                names.join(", ")
            ),
        );
    }
    let input = typed.get(1).map(|arg| {
        let ident = match &*arg.pat {
            syn::Pat::Ident(p) => p.ident.clone(),
            _ => format_ident!("input"),
        };
        (ident, (*arg.ty).clone())
    });
    let output = output_type(&sig.output, method_name, diags);
    (input, output)
}

fn check_receiver(receiver: &syn::Receiver, diags: &mut Diagnostics) {
    let message = "operations take `&self`: one handler serves many calls at once (keep mutable \
                   state behind a `Mutex` or an atomic); write `&self`";
    match &receiver.kind {
        syn::ReceiverKind::Reference(_, lifetime, mutability) => {
            if mutability.is_some() {
                diags.error(receiver, message);
            } else if let Some(lifetime) = lifetime {
                diags.error(
                    lifetime,
                    "remove the lifetime: operations take plain `&self`",
                );
            }
        }
        _ => diags.error(receiver, message),
    }
}

fn check_pattern(pat: &syn::Pat, ty: &syn::Type, diags: &mut Diagnostics) {
    match pat {
        syn::Pat::Ident(p) if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() => {}
        syn::Pat::Wild(_) => {}
        other => diags.error(
            other,
            format!(
                "patterns are not allowed in operation arguments; write a plain name such as `input: {}`",
                quote!(#ty)
            ),
        ),
    }
}

fn is_context_type(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "OperationContext" && s.arguments.is_none()),
        _ => false,
    }
}

fn output_type(
    output: &syn::ReturnType,
    method_name: &str,
    diags: &mut Diagnostics,
) -> Option<syn::Type> {
    let hint = "operations return `OperationResult<Output>` (`OperationResult<()>` for no output)";
    let syn::ReturnType::Type(_, ty) = output else {
        diags.error_at(
            Span::call_site(),
            format!("operation `{method_name}` has no return type; {hint}"),
        );
        return None;
    };
    let syn::Type::Path(path) = &**ty else {
        diags.error(ty, format!("unsupported return type; {hint}"));
        return None;
    };
    let last = path.path.segments.last();
    let Some(segment) = last.filter(|s| s.ident == "OperationResult") else {
        diags.error(ty, format!("unsupported return type; {hint}"));
        return None;
    };
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => match args.args.first()
        {
            Some(syn::GenericArgument::Type(t)) => Some(t.clone()),
            _ => {
                diags.error(args, format!("expected one output type; {hint}"));
                None
            }
        },
        other => {
            diags.error(
                if matches!(other, syn::PathArguments::None) {
                    quote!(#segment)
                } else {
                    quote!(#other)
                },
                format!("expected one output type; {hint}"),
            );
            None
        }
    }
}

fn check_wire_name(name: &str, span: Span, what: &str, diags: &mut Diagnostics) {
    if name.is_empty() {
        diags.error_at(span, format!("the {what} name must not be empty; write `name = \"...\"` with at least one character"));
        return;
    }
    if name.len() > 1000 {
        diags.error_at(
            span,
            format!(
                "the {what} name is {} bytes long; Temporal allows at most 1000",
                name.len()
            ),
        );
    }
    if name.chars().any(char::is_control) {
        diags.error_at(
            span,
            format!("the {what} name contains a control character; use printable characters"),
        );
    }
    check_reserved(name, span, what, diags);
}

fn check_reserved(name: &str, span: Span, what: &str, diags: &mut Diagnostics) {
    for (prefix, owner) in RESERVED_PREFIXES {
        if name.starts_with(prefix) {
            diags.error_at(
                span,
                format!("{what} names starting with `{prefix}` are reserved by {owner}; choose another name"),
            );
        }
    }
}

/// Where the runtime crate is: `crate = ...` if given, else what the invoking crate's Cargo.toml
/// calls `nexus-runtime`, else `::nexus_runtime`.
fn runtime_path(explicit: Option<syn::Path>) -> TokenStream {
    if let Some(path) = explicit {
        return quote!(#path);
    }
    match proc_macro_crate::crate_name("nexus-runtime") {
        Ok(proc_macro_crate::FoundCrate::Name(name)) => {
            let ident = format_ident!("{}", name);
            quote!(::#ident)
        }
        // `Itself` is the runtime's own tests and docs, which see it as `nexus_runtime`
        // (it declares `extern crate self as nexus_runtime`).
        Ok(proc_macro_crate::FoundCrate::Itself) | Err(_) => quote!(::nexus_runtime),
    }
}
