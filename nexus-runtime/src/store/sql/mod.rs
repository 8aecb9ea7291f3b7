//! What the SQLite and PostgreSQL stores share: one schema shape (see `migrations/`) and the
//! same encoding of records into it, with the decoding of rows (`rows.rs`, over either
//! database's rows). Each store has its own statements (`store/sqlite/`, `store/postgres/`).
//!
//! Encoding:
//! - times: `BIGINT` microseconds since the Unix epoch (columns named `*_us`);
//! - payloads: the body as `BLOB`/`BYTEA`, its content headers as a JSON object in `TEXT`;
//! - failures, links, headers, options: JSON in `TEXT`;
//! - states: their names in `TEXT`, checked by the schema;
//! - ids: UUIDs as hyphenated lower-case `TEXT`.

mod rows;

#[cfg(feature = "sqlite")]
pub(crate) use rows::column_error;
pub(crate) use rows::{
    RowExt, async_from_row, caller_from_row, delivery_from_row, start_answer_from_row,
};

/// The statement that renews an owner's heartbeat in `$owners` (`caller_owners`,
/// `handler_owners`), with the dialect's placeholders for the owner and its new expiry: one row
/// that keeps every lease the owner holds live (see the migration that made the tables).
macro_rules! heartbeat_sql {
    ($owners:literal, $owner:literal, $until:literal) => {
        concat!(
            "INSERT INTO ",
            $owners,
            " (owner, expires_at_us) VALUES (",
            $owner,
            ", ",
            $until,
            ") ON CONFLICT (owner) DO UPDATE SET expires_at_us = excluded.expires_at_us"
        )
    };
}
pub(crate) use heartbeat_sql;

use serde::{Deserialize, Serialize};

use super::{AsyncOperationRecord, CallerRecord, StoreError};
use crate::error::Failure;
use crate::link::Link;

/// Maps a database error to a [`StoreError`].
#[cfg(feature = "postgres")]
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    let message = e.to_string();
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate(message),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable {
                message,
                source: Some(Box::new(e)),
            }
        }
        sqlx::Error::Database(ref db) if is_contention(db.as_ref()) => StoreError::Unavailable {
            message,
            source: Some(Box::new(e)),
        },
        e => StoreError::Database {
            message,
            source: Some(Box::new(e)),
        },
    }
}

/// Whether the database gave up for a cause that passes: serialization failure, deadlock, lock
/// not available, or a lost connection.
#[cfg(feature = "postgres")]
fn is_contention(db: &dyn sqlx::error::DatabaseError) -> bool {
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return db
            .code()
            .is_some_and(|c| matches!(&*c, "40001" | "40P01" | "55P03") || c.starts_with("08"));
    }
    let _ = db;
    false
}

/// The versions in sqlx's migration table, in order.
#[cfg(feature = "postgres")]
pub(crate) async fn applied_migrations<DB>(pool: &sqlx::Pool<DB>) -> Result<Vec<i64>, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    DB::Row: RowExt,
{
    let rows =
        sqlx::query::<DB>("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
    rows.iter().map(|row| row.int("version")).collect()
}

/// A count for SQL (`LIMIT`), saturating.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A record version as an SQL `BIGINT`.
pub(crate) fn version_param(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Invalid(format!("version {n} is too large to store")))
}

/// A stored UUID.
pub(crate) fn parse_uuid(text: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(text)
        .map_err(|e| StoreError::corrupt(format!("`{text}` is no UUID: {e}")))
}

/// Caller records in the order the memory store gives them: oldest first, then by id.
pub(crate) fn sorted_records(
    records: Result<Vec<CallerRecord>, StoreError>,
) -> Result<Vec<CallerRecord>, StoreError> {
    let mut records = records?;
    records.sort_by_key(|a| (a.scheduled_at, a.id));
    Ok(records)
}

/// Async operation records oldest first, then by token.
pub(crate) fn sorted_async(
    records: Result<Vec<AsyncOperationRecord>, StoreError>,
) -> Result<Vec<AsyncOperationRecord>, StoreError> {
    let mut records = records?;
    records.sort_by(|a, b| (a.started_at, &a.token).cmp(&(b.started_at, &b.token)));
    Ok(records)
}

/// A stored counter back in Rust.
pub(crate) fn counter<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::corrupt(format!("{what} {value} is out of range")))
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Invalid(format!("cannot serialize a record field: {e}")))
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(
    text: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// Headers (content headers, request headers) as JSON text.
pub(crate) fn headers_json(headers: &impl Serialize) -> Result<String, StoreError> {
    to_json(headers)
}

/// A failure as JSON text.
pub(crate) fn failure_json(failure: &Failure) -> Result<String, StoreError> {
    to_json(failure)
}

/// How a link is stored.
#[derive(Serialize, Deserialize)]
struct StoredLink {
    url: String,
    #[serde(rename = "type")]
    link_type: String,
}

/// Links as a JSON array of `{"url", "type"}`.
pub(crate) fn links_json(links: &[Link]) -> Result<String, StoreError> {
    let stored: Vec<StoredLink> = links
        .iter()
        .map(|l| StoredLink {
            url: l.url.clone(),
            link_type: l.link_type.clone(),
        })
        .collect();
    to_json(&stored)
}

pub(crate) fn parse_links(text: &str, what: &str) -> Result<Vec<Link>, StoreError> {
    let stored: Vec<StoredLink> = from_json(text, what)?;
    Ok(stored
        .into_iter()
        .map(|l| Link::new(l.url, l.link_type))
        .collect())
}
