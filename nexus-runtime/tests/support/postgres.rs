//! The PostgreSQL harness: a fresh schema per test in the database `NEXUS_TEST_POSTGRES_URL`
//! names (see `scripts/ensure-postgres.sh`), dropped at the test's end. Without the variable the
//! tests that need PostgreSQL pass after saying they were skipped.

use std::str::FromStr as _;

use nexus_runtime::store::PostgresStore;
use nexus_runtime::store::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use nexus_runtime::store::sqlx::{self, AssertSqlSafe};

/// The variable naming the PostgreSQL server of the tests.
pub const URL_VARIABLE: &str = "NEXUS_TEST_POSTGRES_URL";

/// The server's URL, or `None` after saying that `test` is skipped: in the test's output, and
/// once per test binary past the test harness's output capture.
pub fn url(test: &str) -> Option<String> {
    static NOTICE: std::sync::Once = std::sync::Once::new();
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            NOTICE.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping the PostgreSQL tests: {URL_VARIABLE} is not set \
                     (export {URL_VARIABLE}=\"$(scripts/ensure-postgres.sh)\" to run them)"
                );
            });
            eprintln!("skipping `{test}` on PostgreSQL: {URL_VARIABLE} is not set");
            None
        }
    }
}

/// A schema of one test's own.
pub struct Schema {
    url: String,
    name: String,
}

impl Schema {
    /// A new empty schema for `test`, or `None` (after saying so) when `NEXUS_TEST_POSTGRES_URL`
    /// is unset.
    pub async fn create(test: &str) -> Option<Self> {
        let url = url(test)?;
        // PostgreSQL truncates identifiers to 63 bytes: the unique suffix is kept whole.
        let name = format!(
            "nexus_test_{}_{}",
            &test[..test.len().min(40)],
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        execute(&url, &format!("CREATE SCHEMA \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create schema {name}: {e}"));
        Some(Self { url, name })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection options whose `search_path` is the schema.
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.url)
            .unwrap_or_else(|e| panic!("{URL_VARIABLE} is not a PostgreSQL URL: {e}"))
            .options([("search_path", self.name.as_str())])
    }

    /// A store in the schema, with a pool of its own (4 connections).
    pub async fn connect(&self) -> PostgresStore {
        PostgresStore::connect_with(self.options(), 4)
            .await
            .unwrap_or_else(|e| panic!("cannot open a store in schema {}: {e}", self.name))
    }

    /// Drops the schema and everything in it.
    pub async fn remove(&self) {
        // Replicas killed mid-test may leave connections the server has not noticed yet: a
        // schema left behind is harmless, so a failure here is reported, not fatal.
        if let Err(e) = execute(&self.url, &format!("DROP SCHEMA \"{}\" CASCADE", self.name)).await
        {
            eprintln!("schema {} left behind: {e}", self.name);
        }
    }
}

/// Runs one statement on a connection of its own.
async fn execute(url: &str, statement: &str) -> Result<(), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"));
    let done = sqlx::query(AssertSqlSafe(statement.to_owned()))
        .execute(&pool)
        .await
        .map(drop);
    pool.close().await;
    done
}
