//! Case conversions between Rust identifiers and wire names.

use heck::{ToLowerCamelCase, ToSnakeCase, ToUpperCamelCase};

/// The identifier's text without a raw prefix (`r#type` → `type`).
pub(crate) fn unraw(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

/// The default wire name of an operation: lowerCamelCase of the method (`check_transaction` →
/// `checkTransaction`).
pub(crate) fn operation_wire_name(method: &syn::Ident) -> String {
    unraw(method).to_lower_camel_case()
}

/// The descriptor type of an operation: UpperCamelCase of the method.
pub(crate) fn descriptor_name(method: &syn::Ident) -> String {
    unraw(method).to_upper_camel_case()
}

/// The module holding a service's operation descriptors: snake_case of the trait.
pub(crate) fn module_name(trait_ident: &syn::Ident) -> String {
    unraw(trait_ident).to_snake_case()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::format_ident;

    #[test]
    fn conversions() {
        assert_eq!(
            operation_wire_name(&format_ident!("check_transaction")),
            "checkTransaction"
        );
        assert_eq!(operation_wire_name(&format_ident!("r#type")), "type");
        assert_eq!(
            descriptor_name(&format_ident!("get_quick_score")),
            "GetQuickScore"
        );
        assert_eq!(
            module_name(&format_ident!("FraudDetection")),
            "fraud_detection"
        );
    }
}
