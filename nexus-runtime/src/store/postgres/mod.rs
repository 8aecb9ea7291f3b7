//! The PostgreSQL store: one database shared by the replicas of a service. The store traits are
//! implemented in `caller.rs`, `handler.rs` and `outbox.rs`, on the row encoding of `store/sql/`.

use std::fmt;
use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::StoreError;
use super::time::{expiry_micros, to_micros};

mod caller;
mod handler;
mod listing;
mod outbox;

/// The schema migrations, embedded at compile time from `migrations/postgres`.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// A statement with its parameters bound.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, PgArguments>;

/// A store in a PostgreSQL database (feature `postgres`), for several replicas of one service.
///
/// Replicas share the records; each drives the operations it holds a lease on, and claims those
/// whose owner stopped renewing (claims use `FOR UPDATE SKIP LOCKED`, so concurrent claimers never
/// get the same operation nor wait for each other). Connecting migrates the schema to the latest
/// version; replicas starting together serialize on the migrator's advisory lock.
///
/// No TLS is compiled in: connect over loopback, a private network or a Unix socket.
///
/// ```no_run
/// # async fn demo() -> Result<(), nexus_runtime::store::StoreError> {
/// use nexus_runtime::store::PostgresStore;
///
/// let store = PostgresStore::connect("postgres://nexus@127.0.0.1:5432/nexus").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = self.pool.connect_options();
        f.debug_struct("PostgresStore")
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The default size of the connection pool.
    pub const MAX_CONNECTIONS: u32 = 8;

    /// How long getting a connection may take (connecting included, retried while refused)
    /// before a call fails with [`StoreError::Unavailable`].
    pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the database at `url` (`postgres://user@host:port/database`, with any of
    /// PostgreSQL's URL parameters) and migrates its schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Open {
                message: "invalid PostgreSQL URL: it must start with `postgres://` or \
                          `postgresql://`"
                    .into(),
                source: None,
            });
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Open {
            message: format!("invalid PostgreSQL URL: {e}"),
            source: Some(Box::new(e)),
        })?;
        Self::connect_with(options, Self::MAX_CONNECTIONS).await
    }

    /// Connects with explicit options (for example a `search_path`, to keep the tables in their
    /// own schema) and a pool of at most `max_connections`, and migrates the schema.
    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Self::ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                message: format!("cannot connect to PostgreSQL at {target}: {e}"),
                source: Some(Box::new(e)),
            })?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool, and migrates the schema.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Open {
            message: format!("cannot migrate the PostgreSQL schema: {e}"),
            source: Some(Box::new(e)),
        })?;
        Ok(Self { pool })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool reads go through: the same one (PostgreSQL runs concurrent writers itself).
    pub(crate) fn readers(&self) -> &PgPool {
        &self.pool
    }

    /// A write of one statement: a connection of the pool (the statement commits itself).
    pub(crate) async fn write_one(&self) -> Result<PgWrite, StoreError> {
        let conn = self.pool.acquire().await.map_err(super::sql::db_error)?;
        Ok(PgWrite::Direct(conn))
    }

    /// A write of several statements: a transaction.
    pub(crate) async fn write_tx(&self) -> Result<PgWrite, StoreError> {
        let tx = self.pool.begin().await.map_err(super::sql::db_error)?;
        Ok(PgWrite::Tx(tx))
    }

    /// Runs `query` as a write of its own (committed) and answers whether it changed exactly
    /// one row: the compare-and-set writes (a delivery marked, a claim given up).
    pub(crate) async fn execute_one(&self, query: PgQuery<'_>) -> Result<bool, StoreError> {
        let mut w = self.write_one().await?;
        let done = query.execute(&mut *w).await.map_err(super::sql::db_error)?;
        w.commit().await.map_err(super::sql::db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Runs `query` as a write of its own (committed) and returns the rows it returned: the
    /// claims and renewals of leases, `UPDATE ... RETURNING`.
    pub(crate) async fn write_rows(&self, query: PgQuery<'_>) -> Result<Vec<PgRow>, StoreError> {
        let mut w = self.write_one().await?;
        let rows = query
            .fetch_all(&mut *w)
            .await
            .map_err(super::sql::db_error)?;
        w.commit().await.map_err(super::sql::db_error)?;
        Ok(rows)
    }

    /// Claims leases with `sql` (`$1` the owner, `$2` the new expiry, `$3` now, `$4` the most
    /// rows): the rows claimed.
    pub(crate) async fn claim_rows(
        &self,
        sql: &'static str,
        owner: &str,
        now: SystemTime,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<PgRow>, StoreError> {
        self.write_rows(
            sqlx::query(sql)
                .bind(owner)
                .bind(expiry_micros(now, lease)?)
                .bind(to_micros(now)?)
                .bind(super::sql::limit(max)),
        )
        .await
    }

    /// Renews an owner's heartbeat with `sql` (`$1` the owner, `$2` its new expiry): one row,
    /// which keeps every lease the owner holds live (the caller's and the handler's).
    pub(crate) async fn heartbeat(
        &self,
        sql: &'static str,
        owner: &str,
        now: SystemTime,
        lease: Duration,
    ) -> Result<(), StoreError> {
        self.write_rows(
            sqlx::query(sql)
                .bind(owner)
                .bind(expiry_micros(now, lease)?),
        )
        .await?;
        Ok(())
    }

    /// Runs `sql` (`$1` a key, `$2` the owner) once per key, in one transaction, and returns the
    /// rows changed in all: the releases of leases.
    pub(crate) async fn release_each(
        &self,
        sql: &'static str,
        owner: &str,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut released = 0;
        for key in keys {
            released += sqlx::query(sql)
                .bind(key)
                .bind(owner)
                .execute(&mut *tx)
                .await
                .map_err(super::sql::db_error)?
                .rows_affected();
        }
        tx.commit().await.map_err(super::sql::db_error)?;
        Ok(released)
    }

    /// The versions of the schema migrations applied to this database, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        super::sql::applied_migrations(&self.pool).await
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A write's connection (see [`PostgresStore::write_one`] and [`PostgresStore::write_tx`]): the
/// SQL stores' code runs its statements on it and commits it, whichever it is.
pub(crate) enum PgWrite {
    /// One statement, committed by itself.
    Direct(sqlx::pool::PoolConnection<sqlx::Postgres>),
    /// A transaction, rolled back unless committed.
    Tx(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl PgWrite {
    /// Commits the transaction (nothing to do for a single statement).
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Direct(_) => Ok(()),
            Self::Tx(tx) => tx.commit().await,
        }
    }
}

impl std::ops::Deref for PgWrite {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &sqlx::PgConnection {
        match self {
            Self::Direct(conn) => conn,
            Self::Tx(tx) => tx,
        }
    }
}

impl std::ops::DerefMut for PgWrite {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        match self {
            Self::Direct(conn) => conn,
            Self::Tx(tx) => tx,
        }
    }
}
