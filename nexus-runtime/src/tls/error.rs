//! What can go wrong setting TLS up.

use std::fmt;

/// A TLS configuration that cannot be used: a file that cannot be read, PEM without the
/// expected certificates or key, a key that does not match its certificate, a CA bundle rustls
/// refuses. The message names the file (or `in-memory ...`) and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsError {
    message: String,
}

impl TlsError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The problem, for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

impl From<TlsError> for std::io::Error {
    fn from(error: TlsError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, error)
    }
}
