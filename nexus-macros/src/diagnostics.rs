//! Collects errors with their spans so that every problem is reported in one compilation.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// An accumulator of `syn::Error`s.
#[derive(Default)]
pub(crate) struct Diagnostics {
    errors: Vec<syn::Error>,
}

impl Diagnostics {
    /// Records an error at the span of `tokens`.
    pub fn error(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span`.
    pub fn error_at(&mut self, span: proc_macro2::Span, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records an existing error.
    pub fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// `Ok(value)` if nothing was recorded, else all errors as `compile_error!` tokens.
    pub fn finish<T>(self, value: T) -> Result<T, TokenStream> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self
                .errors
                .into_iter()
                .map(|e| e.to_compile_error())
                .collect())
        }
    }

    /// How many errors were recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}
