//! The schema migrations (`migrations/sqlite`, embedded at compile time), applied in order; the
//! version a database has reached is its `PRAGMA user_version`.
//!
//! Databases migrated by earlier releases kept their version in sqlx's `_sqlx_migrations` table
//! instead: on first open, its highest applied version becomes the `user_version`.

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior};

use super::writer::db_error;
use crate::store::StoreError;

/// The migrations: version and SQL, in order.
const MIGRATIONS: [(i64, &str); 7] = [
    (
        1,
        include_str!("../../../migrations/sqlite/0001_operation_store.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_delivery_token_index.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_callback_secret.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_principal.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_cancel_requested_index.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/sqlite/0006_checks_without_in_lists.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/sqlite/0007_owner_heartbeats.sql"),
    ),
];

/// Migrates the database on `conn` to the latest version, each migration in a transaction of its
/// own (handles opening the same file at once wait for each other's).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    for (version, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let current = current_version(&tx)?;
        if current >= version {
            tx.commit().map_err(db_error)?;
            continue;
        }
        tx.execute_batch(sql).map_err(|e| StoreError::Open {
            message: format!("migration {version} failed: {e}"),
            source: Some(Box::new(e)),
        })?;
        tx.pragma_update(None, "user_version", version)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
    }
    Ok(())
}

/// The version the database is at (adopting sqlx's record of it, if that is all it has).
fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    if version > 0 {
        return Ok(version);
    }
    let has_sqlx_table = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(db_error)?
        .is_some();
    if !has_sqlx_table {
        return Ok(0);
    }
    let adopted: Option<i64> = conn
        .query_row(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
            [],
            |row| row.get(0),
        )
        .map_err(db_error)?;
    let adopted = adopted.unwrap_or(0);
    if adopted > 0 {
        conn.pragma_update(None, "user_version", adopted)
            .map_err(db_error)?;
    }
    Ok(adopted)
}

/// The versions applied to the database on `conn`, in order.
pub(crate) fn applied(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    Ok(MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| *v <= version)
        .collect())
}
