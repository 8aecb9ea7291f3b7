//! Checks of names: wire names (service and operation) and Rust names that would collide with
//! what is reserved or generated.

use proc_macro2::Span;

use crate::diagnostics::Diagnostics;

/// Name prefixes reserved by Temporal and by this crate.
const RESERVED_PREFIXES: &[(&str, &str)] = &[("__temporal_", "Temporal"), ("__nexus", "nexus-rs")];

/// Inherent methods of the generated client; an operation method cannot share their names.
pub(super) const CLIENT_METHODS: &[&str] = &["new", "endpoint", "service_client"];

/// The longest wire name Temporal accepts, in bytes.
const MAX_WIRE_NAME: usize = 1000;

/// Checks a wire name given with `name = "..."`; `what` is `service` or `operation`.
pub(super) fn check_wire_name(name: &str, span: Span, what: &str, diags: &mut Diagnostics) {
    if name.is_empty() {
        diags.error_at(
            span,
            format!(
                "the {what} name must not be empty; write `name = \"...\"` with at least one \
                 character, or remove `name` to use the default"
            ),
        );
        return;
    }
    if name.len() > MAX_WIRE_NAME {
        diags.error_at(
            span,
            format!(
                "the {what} name is {} bytes long; Temporal allows at most {MAX_WIRE_NAME}",
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

/// Rejects names starting with a reserved prefix.
pub(super) fn check_reserved(name: &str, span: Span, what: &str, diags: &mut Diagnostics) {
    if let Some((prefix, owner)) = RESERVED_PREFIXES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
    {
        diags.error_at(
            span,
            format!(
                "{what} names starting with `{prefix}` are reserved by {owner}; choose another name"
            ),
        );
    }
}
