//! Listing records for operators: queries with filters and keyset paging, over every store.
//!
//! A page is asked for with a query (filters, the cursor of the last record seen, a limit) and
//! comes back in a stable order (oldest first, then by id); the next page starts after its last
//! record. Cursors are opaque strings ([`Cursor`]): a time in microseconds and a key.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::time::{from_micros, to_micros};
use super::{AsyncState, DeliveryId, DeliveryState, OperationId, OperationState, StoreError};

/// The most records one page holds, whatever the query asks for.
pub const MAX_PAGE: usize = 1000;

/// The page size when a query names none.
pub const DEFAULT_PAGE: usize = 100;

/// Where a page starts: after the record with this time and key (the order of a listing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The time the listing is ordered by (truncated to microseconds, as stored).
    pub at: SystemTime,
    /// The key that breaks ties (an id or a token).
    pub key: String,
}

impl Cursor {
    /// The cursor after a record with time `at` and key `key`.
    pub fn new(at: SystemTime, key: impl Into<String>) -> Self {
        Self {
            at,
            key: key.into(),
        }
    }

    /// The opaque text form: `{microseconds}.{key, base64url}`.
    pub fn encode(&self) -> String {
        let micros = to_micros(self.at).unwrap_or(0);
        format!("{micros}.{}", URL_SAFE_NO_PAD.encode(&self.key))
    }

    /// Parses [`encode`](Self::encode)'s form; `Invalid` for anything else.
    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::Invalid(format!("`{text}` is not a listing cursor"));
        let (micros, key) = text.split_once('.').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        let key = URL_SAFE_NO_PAD.decode(key).map_err(|_| invalid())?;
        Ok(Self {
            at: from_micros(micros).map_err(|_| invalid())?,
            key: String::from_utf8(key).map_err(|_| invalid())?,
        })
    }

    /// The time in microseconds, as the SQL stores keep it.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn micros(&self) -> Result<i64, StoreError> {
        to_micros(self.at)
    }
}

/// Which operations of a caller to list ([`CallerStore::list_operations`](super::CallerStore::list_operations)),
/// oldest scheduled first, then by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerQuery {
    /// Only these states (all when empty).
    pub states: Vec<OperationState>,
    /// Only this endpoint.
    pub endpoint: Option<String>,
    /// Only this service (wire name).
    pub service: Option<String>,
    /// Only operations after this one (scheduled time, operation id).
    pub after: Option<Cursor>,
    /// At most this many (at most [`MAX_PAGE`]; [`DEFAULT_PAGE`] when 0).
    pub limit: usize,
}

/// Which async operations of a handler to list ([`HandlerStore::list_async`](super::HandlerStore::list_async)),
/// oldest started first, then by token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AsyncQuery {
    /// Only these states (all when empty).
    pub states: Vec<AsyncState>,
    /// Only this service (wire name).
    pub service: Option<String>,
    /// Only operations after this one (start time, token).
    pub after: Option<Cursor>,
    /// At most this many (at most [`MAX_PAGE`]; [`DEFAULT_PAGE`] when 0).
    pub limit: usize,
}

/// Which completion deliveries to list ([`OutboxStore::list_deliveries`](super::OutboxStore::list_deliveries)),
/// oldest enqueued first, then by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only these states (all when empty).
    pub states: Vec<DeliveryState>,
    /// Only deliveries with at least one failed attempt (pending ones being retried, or dead).
    pub failed_only: bool,
    /// Only deliveries after this one (enqueue time, delivery id).
    pub after: Option<Cursor>,
    /// At most this many (at most [`MAX_PAGE`]; [`DEFAULT_PAGE`] when 0).
    pub limit: usize,
}

/// The page size a query asks for, bounded.
pub(crate) fn page_size(limit: usize) -> usize {
    match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// The cursor after caller record (`scheduled_at`, `id`).
pub fn caller_cursor(scheduled_at: SystemTime, id: OperationId) -> Cursor {
    Cursor::new(scheduled_at, id.to_string())
}

/// The cursor after delivery (`created_at`, `id`).
pub fn delivery_cursor(created_at: SystemTime, id: DeliveryId) -> Cursor {
    Cursor::new(created_at, id.to_string())
}

/// Whether (`at`, `key`) comes after `cursor` in a listing's order.
pub(crate) fn is_after(cursor: Option<&Cursor>, at: SystemTime, key: &str) -> bool {
    cursor.is_none_or(|c| (at, key) > (c.at, c.key.as_str()))
}

/// Whether `state` passes a states filter (empty: all).
pub(crate) fn admits<T: PartialEq>(states: &[T], state: &T) -> bool {
    states.is_empty() || states.contains(state)
}

/// The error of a store that cannot list (an implementation of the traits outside this crate
/// that does not override the listing methods).
pub(crate) fn unsupported(what: &str) -> StoreError {
    StoreError::Invalid(format!("this store cannot {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor::new(
            SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            "tok/with.dots",
        );
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "12", "x.abc", "12.!!", "-99999999999999999999.YQ"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
        assert_eq!(page_size(0), DEFAULT_PAGE);
        assert_eq!(page_size(5), 5);
        assert_eq!(page_size(1 << 20), MAX_PAGE);
    }
}
