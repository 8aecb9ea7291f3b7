//! Attribute arguments, parsed with darling after a check of the keys that names the valid ones.
//!
//! - `#[nexus_service(name = "fraud.v1", crate = "path::to::nexus_runtime")]` on the trait;
//! - `#[operation(name = "checkTransaction")]` on a method.

use std::collections::HashSet;

use darling::FromMeta;
use darling::ast::NestedMeta;
use darling::util::SpannedValue;
use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::diagnostics::Diagnostics;

/// The name of the per-operation attribute.
pub(crate) const OPERATION_ATTR: &str = "operation";

/// Arguments of `#[nexus_service(...)]`.
#[derive(Debug, Default, FromMeta)]
pub(crate) struct ServiceArgs {
    /// The service's wire name (default: the trait's name).
    pub name: Option<SpannedValue<String>>,
    /// The path of the runtime crate, when it cannot be found in Cargo.toml.
    #[darling(rename = "crate")]
    pub krate: Option<syn::Path>,
}

impl ServiceArgs {
    /// The keys, each with an example value.
    const KEYS: &'static [(&'static str, &'static str)] =
        &[("name", "orders.v1"), ("crate", "::nexus_runtime")];
}

/// Arguments of `#[operation(...)]`.
#[derive(Debug, Default, FromMeta)]
pub(crate) struct OperationArgs {
    /// The operation's wire name (default: lowerCamelCase of the method).
    pub name: Option<SpannedValue<String>>,
}

impl OperationArgs {
    /// The keys, each with an example value.
    const KEYS: &'static [(&'static str, &'static str)] = &[("name", "placeOrder")];
}

/// Parses `#[nexus_service(...)]` arguments.
pub(crate) fn service_args(tokens: TokenStream, diags: &mut Diagnostics) -> ServiceArgs {
    parse(tokens, "nexus_service", ServiceArgs::KEYS, diags)
}

/// Parses every `#[operation(...)]` attribute of a method (a repeated attribute is an error).
pub(crate) fn operation_args(attrs: &[syn::Attribute], diags: &mut Diagnostics) -> OperationArgs {
    let mut found = attrs.iter().filter(|a| a.path().is_ident(OPERATION_ATTR));
    let Some(first) = found.next() else {
        return OperationArgs::default();
    };
    if let Some(second) = found.next() {
        diags.error(
            second,
            "`#[operation]` is given twice on this method; merge them into one `#[operation(name = \"...\")]`",
        );
    }
    match &first.meta {
        syn::Meta::List(list) => parse(
            list.tokens.clone(),
            OPERATION_ATTR,
            OperationArgs::KEYS,
            diags,
        ),
        other => {
            diags.error(
                other,
                "expected `#[operation(name = \"wireName\")]`; without a name, remove the \
                 attribute (the default wire name is the method's name in lowerCamelCase)",
            );
            OperationArgs::default()
        }
    }
}

fn key_list(valid: &[(&str, &str)]) -> String {
    valid
        .iter()
        .map(|(k, _)| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse<T: FromMeta + Default>(
    tokens: TokenStream,
    attr: &str,
    valid: &[(&str, &str)],
    diags: &mut Diagnostics,
) -> T {
    let items = match NestedMeta::parse_meta_list(tokens) {
        Ok(items) => items,
        Err(e) => {
            diags.push(syn::Error::new(
                e.span(),
                format!(
                    "{e}; expected `#[{attr}(key = value, ...)]` with keys {}",
                    key_list(valid)
                ),
            ));
            return T::default();
        }
    };
    let mut seen = HashSet::new();
    let mut ok = true;
    for item in &items {
        let path = match item {
            NestedMeta::Meta(meta) => meta.path(),
            NestedMeta::Lit(lit) => {
                diags.error(
                    lit,
                    format!(
                        "expected `key = value` in `#[{attr}]`, found a bare literal; valid keys: {} \
                         (for example `name = {}`)",
                        key_list(valid),
                        lit.to_token_stream()
                    ),
                );
                ok = false;
                continue;
            }
            NestedMeta::NameValueInvalidExpr(other) => &other.path,
        };
        let key = path.to_token_stream().to_string().replace(' ', "");
        let Some((_, example)) = valid.iter().find(|(k, _)| *k == key) else {
            diags.error(
                path,
                format!(
                    "unknown key `{key}` in `#[{attr}]`; valid keys: {}",
                    key_list(valid)
                ),
            );
            ok = false;
            continue;
        };
        if !seen.insert(key.clone()) {
            diags.error(
                path,
                format!("`{key}` is given twice in `#[{attr}]`; keep one"),
            );
            ok = false;
            continue;
        }
        let expected = format!("`{key}` takes a string: write `{key} = \"{example}\"`");
        match item {
            NestedMeta::Meta(syn::Meta::NameValue(nv)) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => {
                    if key == "crate" && syn::parse_str::<syn::Path>(&s.value()).is_err() {
                        diags.error(
                            s,
                            format!(
                                "`crate` takes the path of the runtime crate: write `crate = \"{example}\"`"
                            ),
                        );
                        ok = false;
                    }
                }
                other => {
                    diags.error(other, expected);
                    ok = false;
                }
            },
            NestedMeta::NameValueInvalidExpr(nv) => {
                diags.error(&nv.value, expected);
                ok = false;
            }
            other => {
                diags.error(other, expected);
                ok = false;
            }
        }
    }
    if !ok {
        return T::default();
    }
    match T::from_list(&items) {
        Ok(args) => args,
        Err(e) => {
            for err in e.flatten() {
                let span = err.span();
                diags.push(syn::Error::new(span, format!("{err} in `#[{attr}]`")));
            }
            T::default()
        }
    }
}
