//! Collects errors with their spans so that every problem is reported in one compilation.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// An accumulator of `syn::Error`s, and of checks left to rustc.
#[derive(Default)]
pub(crate) struct Diagnostics {
    errors: Vec<syn::Error>,
    /// Items that fail to compile with rustc's own error when the input is wrong, for mistakes
    /// rustc already reports well (a second, hand-made error would only repeat it).
    deferred: Vec<TokenStream>,
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

    /// Records an item that does not compile, so that rustc reports the problem.
    pub fn defer(&mut self, check: TokenStream) {
        self.deferred.push(check);
    }

    /// `Ok(value)` if nothing was recorded, else all errors as `compile_error!` tokens followed
    /// by the deferred checks, with the value.
    pub fn finish<T>(self, value: T) -> Result<T, (TokenStream, Box<T>)> {
        if !self.has_errors() {
            return Ok(value);
        }
        let mut out: TokenStream = self
            .errors
            .iter()
            .map(syn::Error::to_compile_error)
            .collect();
        out.extend(self.deferred);
        Err((out, Box::new(value)))
    }

    /// How many errors were recorded (deferred checks included).
    pub fn len(&self) -> usize {
        self.errors.len() + self.deferred.len()
    }

    /// Whether anything was recorded.
    pub fn has_errors(&self) -> bool {
        self.len() > 0
    }
}
