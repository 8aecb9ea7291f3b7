//! What the store traits do not offer yet, done with SQL against the stores' schema
//! (`nexus-runtime/migrations/`): the ids of recent caller operations, finished ones included
//! (read-only), and putting a dead completion delivery back in the outbox. Kept apart so it can
//! be replaced by store methods when they exist.

use std::time::{SystemTime, UNIX_EPOCH};

use nexus_runtime::store::sqlx;
use nexus_runtime::store::{PostgresStore, SqliteStore};

/// The pool of an SQL store.
pub enum SqlPool {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

impl SqlPool {
    /// The pool of an SQLite store.
    pub fn sqlite(store: &SqliteStore) -> Self {
        Self::Sqlite(store.pool().clone())
    }

    /// The pool of a PostgreSQL store.
    pub fn postgres(store: &PostgresStore) -> Self {
        Self::Postgres(store.pool().clone())
    }

    /// The ids of the `limit` most recently scheduled caller operations, newest first.
    pub async fn recent_operation_ids(&self, limit: u32) -> Result<Vec<String>, sqlx::Error> {
        const SQL_SQLITE: &str =
            "SELECT id FROM caller_operations ORDER BY scheduled_at_us DESC LIMIT ?1";
        const SQL_POSTGRES: &str =
            "SELECT id FROM caller_operations ORDER BY scheduled_at_us DESC LIMIT $1";
        match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar::<_, String>(SQL_SQLITE)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar::<_, String>(SQL_POSTGRES)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// Makes dead delivery `id` pending again, due now, its attempts kept: `false` if there is
    /// no dead delivery with that id.
    pub async fn redeliver(&self, id: &str) -> Result<bool, sqlx::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        const SQL_SQLITE: &str = "UPDATE completion_deliveries \
             SET state = 'pending', next_attempt_at_us = ?1, finished_at_us = NULL \
             WHERE id = ?2 AND state = 'dead'";
        const SQL_POSTGRES: &str = "UPDATE completion_deliveries \
             SET state = 'pending', next_attempt_at_us = $1, finished_at_us = NULL \
             WHERE id = $2 AND state = 'dead'";
        let rows = match self {
            Self::Sqlite(pool) => sqlx::query(SQL_SQLITE)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Postgres(pool) => sqlx::query(SQL_POSTGRES)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(rows == 1)
    }
}
