//! Checks of an operation's signature:
//! `async fn op(&self, ctx: OperationContext[, input: Input]) -> OperationResult<Output>`.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote_spanned};
use syn::spanned::Spanned as _;
use syn::visit::Visit;

use crate::diagnostics::Diagnostics;

/// The parts of a checked signature the renderers need.
pub(super) struct Signature {
    /// The input argument (name and type), or `None` for an operation without input.
    pub input: Option<(syn::Ident, syn::Type)>,
    /// The output type, or `None` if the return type is unusable (error recorded).
    pub output: Option<syn::Type>,
}

/// Checks the receiver, the context, the input and the return type of `sig`.
pub(super) fn check(
    sig: &syn::Signature,
    method_name: &str,
    krate: &TokenStream,
    diags: &mut Diagnostics,
) -> Signature {
    let usage = format!(
        "`async fn {method_name}(&self, ctx: OperationContext, input: Input) -> OperationResult<Output>`"
    );
    match sig.inputs.first() {
        None => diags.error_at(
            sig.paren_token.span.join(),
            format!("operation `{method_name}` has no arguments; write {usage}"),
        ),
        Some(syn::FnArg::Receiver(receiver)) => check_receiver(receiver, diags),
        Some(syn::FnArg::Typed(arg)) => diags.error(
            arg,
            format!(
                "operation `{method_name}` has no `self` argument; add `&self` first: write {usage}"
            ),
        ),
    }
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) => Some(t),
            // A receiver after the first argument is rustc's to report.
            syn::FnArg::Receiver(_) => None,
        })
        .collect();

    if !sig.inputs.is_empty() {
        check_context(typed.first().copied(), sig, method_name, &usage, diags);
    }
    for arg in &typed {
        check_pattern(&arg.pat, &arg.ty, diags);
    }
    if let Some(extra) = typed.get(2) {
        let names: Vec<String> = typed[1..]
            .iter()
            .map(|a| format!("`{}`", a.pat.to_token_stream()))
            .collect();
        diags.error(
            extra,
            format!(
                "operation `{method_name}` takes at most one input, but has {} ({}); bundle them \
                 into one struct and take `input: ThatStruct`",
                typed.len() - 1,
                names.join(", ")
            ),
        );
    }
    let input = typed.get(1).map(|arg| {
        check_owned(&arg.ty, "input", diags);
        let ident = match &*arg.pat {
            syn::Pat::Ident(p) => p.ident.clone(),
            _ => format_ident!("input"),
        };
        (ident, (*arg.ty).clone())
    });
    let output = output_type(sig, method_name, krate, diags);
    if let Some(output) = &output {
        check_owned(output, "output", diags);
    }
    Signature { input, output }
}

fn check_receiver(receiver: &syn::Receiver, diags: &mut Diagnostics) {
    let message = "operations take `&self`: one handler serves many calls at once (keep mutable \
                   state behind a `Mutex` or an atomic); write `&self`";
    match &receiver.kind {
        syn::ReceiverKind::Reference(_, _, Some(_)) => diags.error(receiver, message),
        syn::ReceiverKind::Reference(_, Some(lifetime), None) => diags.error(
            lifetime,
            "remove the lifetime: operations take plain `&self`",
        ),
        syn::ReceiverKind::Reference(_, None, None) => {}
        // `self: &Self` is `&self` spelled out.
        syn::ReceiverKind::Typed(_, ty) if is_ref_self(ty) => {}
        _ => diags.error(receiver, message),
    }
}

fn is_ref_self(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Reference(r)
        if r.mutability.is_none()
            && r.lifetime.is_none()
            && matches!(&*r.elem, syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self")))
}

fn check_context(
    first: Option<&syn::PatType>,
    sig: &syn::Signature,
    method_name: &str,
    usage: &str,
    diags: &mut Diagnostics,
) {
    match first {
        None => diags.error_at(
            sig.paren_token.span.join(),
            format!(
                "operation `{method_name}` is missing its context argument; add \
                 `ctx: OperationContext` after `&self`: write {usage} (the input may be omitted \
                 for an operation without input)"
            ),
        ),
        Some(arg) if is_context_type(&arg.ty) => {}
        Some(arg) => match &*arg.ty {
            syn::Type::Reference(r) if is_context_type(&r.elem) => diags.error(
                &arg.ty,
                "the context is passed by value; write `ctx: OperationContext`",
            ),
            _ => diags.error(
                &arg.ty,
                format!(
                    "operation `{method_name}` is missing its context argument: the first \
                     argument after `&self` must be `ctx: OperationContext`; write {usage}"
                ),
            ),
        },
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

fn check_pattern(pat: &syn::Pat, ty: &syn::Type, diags: &mut Diagnostics) {
    let ty = ty.to_token_stream();
    match pat {
        syn::Pat::Ident(p) if p.subpat.is_none() => {
            let ident = &p.ident;
            if p.by_ref.is_some() {
                diags.error(
                    pat,
                    format!(
                        "remove `ref`: operation arguments are taken by value; write `{ident}: {ty}`"
                    ),
                );
            } else if p.mutability.is_some() {
                diags.error(
                    pat,
                    format!(
                        "remove `mut` here: the contract only names the argument (write \
                         `{ident}: {ty}`); an implementation may still say `mut {ident}`"
                    ),
                );
            }
        }
        syn::Pat::Wild(_) => {}
        other => diags.error(
            other,
            format!(
                "patterns are not allowed in operation arguments; write a plain name such as \
                 `input: {ty}` (an implementation may still destructure it)"
            ),
        ),
    }
}

/// Finds what makes a type unusable as an input or output: something borrowed or an `impl Trait`.
#[derive(Default)]
struct NotOwned {
    found: Option<(proc_macro2::TokenStream, &'static str)>,
}

impl<'ast> Visit<'ast> for NotOwned {
    fn visit_type_reference(&mut self, node: &'ast syn::TypeReference) {
        if self.found.is_none() {
            self.found = Some((node.to_token_stream(), "borrowed"));
        }
    }

    fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
        if self.found.is_none() {
            self.found = Some((node.to_token_stream(), "impl"));
        }
    }

    fn visit_lifetime(&mut self, node: &'ast syn::Lifetime) {
        if self.found.is_none() && node.ident != "static" {
            self.found = Some((node.to_token_stream(), "lifetime"));
        }
    }
}

fn check_owned(ty: &syn::Type, role: &str, diags: &mut Diagnostics) {
    let mut finder = NotOwned::default();
    finder.visit_type(ty);
    let Some((tokens, kind)) = finder.found else {
        return;
    };
    let message = match kind {
        "impl" => format!(
            "`impl Trait` cannot be an operation {role}: the wire schema needs one concrete type; \
             name the type"
        ),
        "lifetime" => format!(
            "an operation {role} cannot borrow: it is decoded from JSON into an owned value; \
             remove the lifetime and use owned types"
        ),
        _ => format!(
            "an operation {role} cannot be a reference: it is decoded from JSON into an owned \
             value; use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`)"
        ),
    };
    diags.error(tokens, message);
}

fn output_type(
    sig: &syn::Signature,
    method_name: &str,
    krate: &TokenStream,
    diags: &mut Diagnostics,
) -> Option<syn::Type> {
    let expected = "`OperationResult<Output>` (`OperationResult<()>` for no output)";
    let syn::ReturnType::Type(_, ty) = &sig.output else {
        diags.error_at(
            sig.paren_token.span.close(),
            format!(
                "operation `{method_name}` has no return type; add `-> OperationResult<Output>` \
                 after the arguments (`-> OperationResult<()>` for no output)"
            ),
        );
        return None;
    };
    let segment = match &**ty {
        syn::Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .filter(|s| s.ident == "OperationResult"),
        _ => None,
    };
    let Some(segment) = segment else {
        diags.error(
            ty,
            format!(
                "operation `{method_name}` must return {expected}; errors are returned as \
                 `HandlerError` or `OperationError` through `?`"
            ),
        );
        return None;
    };
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => {
            if let Some(syn::GenericArgument::Type(t)) = args.args.first() {
                return Some(t.clone());
            }
            diags.error(args, format!("expected the output type: write {expected}"));
        }
        // Usually the runtime's generic alias used without its argument: rustc says so at the
        // trait (E0107) with the fix. Should it be an alias of the user's without parameters, the
        // deferred check fails on its own with the same advice.
        syn::PathArguments::None => {
            let span = ty.span();
            let krate = crate::render::respan(krate, span);
            diags.defer(quote_spanned! {span=>
                const _: () = {
                    fn __nexus_output(_: #krate::__private::RequireOutputType<#ty>) {}
                };
            });
        }
        other => diags.error(other, format!("expected one output type: write {expected}")),
    }
    None
}
