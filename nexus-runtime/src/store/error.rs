//! What can go wrong in a store.

use std::error::Error as StdError;

/// An error from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or did not answer in time (connection refused, pool
    /// exhausted, database busy), or the machine failed the write (a full disk, an I/O error):
    /// the write did not happen; worth retrying later.
    #[error("the store is unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// The database refused a statement.
    #[error("database error: {message}")]
    Database {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// The store could not be opened or its schema migrated.
    #[error("cannot open the store: {message}")]
    Open {
        /// What happened, naming the path or URL.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    /// A record with this key already exists (an operation id or an operation token).
    #[error("duplicate record: {0}")]
    Duplicate(String),
    /// A stored value cannot be read back (an unknown state name, malformed JSON, a time out of
    /// range): the database was changed by something else, or by a newer version.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The call itself is invalid (for example an async answer without its operation record).
    #[error("invalid store call: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}
