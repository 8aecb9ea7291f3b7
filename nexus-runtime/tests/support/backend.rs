//! The stores a durable handler test runs against. `open` gives a new handle each time (for the
//! SQL stores, a new connection pool: what a restarted process opens).

use std::sync::Arc;

use nexus_runtime::store::{MemoryStore, Store};

/// Where a test's records live.
pub enum Backend {
    Memory(MemoryStore),
    #[cfg(feature = "sqlite")]
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        schema: String,
    },
}

pub const POSTGRES_URL_VARIABLE: &str = "NEXUS_TEST_POSTGRES_URL";

impl Backend {
    pub fn memory() -> Self {
        Self::Memory(MemoryStore::new())
    }

    #[cfg(feature = "sqlite")]
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh schema in the database of `NEXUS_TEST_POSTGRES_URL`, or `None` (after saying so)
    /// when the variable is unset.
    #[cfg(feature = "postgres")]
    pub async fn postgres(test: &str) -> Option<Self> {
        let url = match std::env::var(POSTGRES_URL_VARIABLE) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!(
                    "skipping {test} on PostgreSQL: {POSTGRES_URL_VARIABLE} is not set \
                     (export {POSTGRES_URL_VARIABLE}=\"$(scripts/ensure-postgres.sh)\" to run it)"
                );
                return None;
            }
        };
        // PostgreSQL truncates identifiers to 63 bytes: keep the unique suffix.
        let schema = format!(
            "nexus_dh_{}_{}",
            &test[..test.len().min(40)],
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        admin(&url, &format!("CREATE SCHEMA \"{schema}\"")).await;
        Some(Self::Postgres { url, schema })
    }

    /// A handle on the store.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Self::Memory(store) => Arc::new(store.clone()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(dir) => Arc::new(
                nexus_runtime::store::SqliteStore::open_in_dir(dir.path())
                    .await
                    .unwrap(),
            ),
            #[cfg(feature = "postgres")]
            Self::Postgres { url, schema } => {
                use std::str::FromStr as _;
                let options = nexus_runtime::store::sqlx::postgres::PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                Arc::new(
                    nexus_runtime::store::PostgresStore::connect_with(options, 4)
                        .await
                        .unwrap(),
                )
            }
        }
    }

    /// The kind of store, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres { .. } => "postgres",
        }
    }

    /// Removes the storage.
    pub async fn cleanup(self) {
        #[cfg(feature = "postgres")]
        if let Self::Postgres { url, schema } = &self {
            admin(url, &format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
        }
        drop(self);
    }
}

#[cfg(feature = "postgres")]
async fn admin(url: &str, statement: &str) {
    use nexus_runtime::store::sqlx::{self, AssertSqlSafe};
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VARIABLE}: {e}"));
    sqlx::query(AssertSqlSafe(statement.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}
