//! The two stores of a run (the caller's and the handler's), fresh for each run: two SQLite files,
//! or two PostgreSQL databases created for the run and dropped after it. And what the harness
//! reads in them: snapshots after each kill, the final records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nexus_runtime::store::sqlx::{self, AssertSqlSafe, Connection as _, FromRow};
use nexus_runtime::store::{CallerRecord, PostgresStore, RequestKey, SqliteStore, Store};
use rusqlite::types::FromSql;
use sqlx::postgres::{PgConnection, PgRow};

/// Which kind of store a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// SQLite files, one per process.
    Sqlite,
    /// PostgreSQL databases, one per process.
    Postgres,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The stores of a run: what the processes get as `--store`.
pub struct Stores {
    pub caller: String,
    pub handler: String,
    /// With PostgreSQL: the server URL (any database) and the databases created for the run.
    postgres: Option<(String, Vec<String>)>,
}

impl Stores {
    /// Fresh stores: files in `dir`, or databases named after `tag` on the server `postgres`.
    pub async fn create(
        kind: StoreKind,
        dir: &Path,
        postgres: Option<&str>,
        tag: &str,
    ) -> Result<Self, String> {
        match kind {
            StoreKind::Sqlite => Ok(Self {
                caller: path_arg(&dir.join("payments.sqlite3"))?,
                handler: path_arg(&dir.join("fraud-handler.sqlite3"))?,
                postgres: None,
            }),
            StoreKind::Postgres => {
                let url = postgres.ok_or(
                    "--store postgres needs --postgres-url or NEXUS_TEST_POSTGRES_URL \
                     (export NEXUS_TEST_POSTGRES_URL=\"$(scripts/ensure-postgres.sh)\")",
                )?;
                let names = [format!("{tag}_payments"), format!("{tag}_handler")];
                let mut admin = PgConnection::connect(url)
                    .await
                    .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e}"))?;
                for name in &names {
                    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                        .execute(&mut admin)
                        .await
                        .map_err(|e| format!("cannot create database {name}: {e}"))?;
                }
                let _ = admin.close().await;
                Ok(Self {
                    caller: with_database(url, &names[0])?,
                    handler: with_database(url, &names[1])?,
                    postgres: Some((url.to_owned(), names.to_vec())),
                })
            }
        }
    }

    /// Where the stores are, for the report.
    pub fn describe(&self) -> String {
        match &self.postgres {
            Some((_, names)) => format!("PostgreSQL databases {}", names.join(" and ")),
            None => format!("SQLite files {} and {}", self.caller, self.handler),
        }
    }

    pub async fn open_caller(&self) -> Result<Db, String> {
        Db::open(&self.caller).await
    }

    pub async fn open_handler(&self) -> Result<Db, String> {
        Db::open(&self.handler).await
    }

    /// Drops the databases created for the run (PostgreSQL); files stay with the work directory.
    pub async fn drop_databases(&self) -> Result<(), String> {
        let Some((url, names)) = &self.postgres else {
            return Ok(());
        };
        let mut admin = PgConnection::connect(url)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL at {url}: {e}"))?;
        for name in names {
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .map_err(|e| format!("cannot drop database {name}: {e}"))?;
        }
        let _ = admin.close().await;
        Ok(())
    }
}

fn path_arg(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// `url` with its database replaced by `database` (its query, if any, kept).
fn with_database(url: &str, database: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {url}: {e}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!("not a PostgreSQL URL: {url}"));
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{scheme}://{authority}/{database}{query}"))
}

/// A row of an SQLite query read as a tuple.
trait SqliteColumns: Sized {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

impl<A: FromSql> SqliteColumns for (A,) {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?,))
    }
}

impl<A: FromSql, B: FromSql, C: FromSql> SqliteColumns for (A, B, C) {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    }
}

/// A store opened by the harness.
pub enum Db {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// What the handler's store holds when a handler process has just died.
#[derive(Clone, Debug, Default)]
pub struct HandlerSnapshot {
    /// Request ids claimed by a start that had not recorded its answer.
    pub open_claims: BTreeSet<String>,
    /// Running async operations: request id -> token.
    pub running: BTreeMap<String, String>,
}

/// The handler's records at the end of a run.
#[derive(Debug, Default)]
pub struct HandlerRecords {
    /// `handler_starts`: (request id, answer, token).
    pub starts: Vec<(String, Option<String>, Option<String>)>,
    /// `handler_operations`: (token, request id, state).
    pub operations: Vec<(String, String, String)>,
    /// `completion_deliveries`: (token, state, last error).
    pub deliveries: Vec<(String, String, Option<String>)>,
}

impl Db {
    async fn open(spec: &str) -> Result<Self, String> {
        let opened = if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            PostgresStore::connect(spec).await.map(Self::Postgres)
        } else {
            SqliteStore::open(spec).await.map(Self::Sqlite)
        };
        opened.map_err(|e| format!("cannot open the store {spec}: {e}"))
    }

    fn store(&self) -> &dyn Store {
        match self {
            Self::Sqlite(s) => s,
            Self::Postgres(s) => s,
        }
    }

    async fn rows<T>(&self, sql: &'static str) -> Result<Vec<T>, String>
    where
        T: SqliteColumns + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let failed = |e: &dyn std::fmt::Display| format!("query failed: {sql}: {e}");
        match self {
            Self::Sqlite(s) => {
                let conn = rusqlite::Connection::open_with_flags(
                    s.path(),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .map_err(|e| failed(&e))?;
                let mut statement = conn.prepare(sql).map_err(|e| failed(&e))?;
                statement
                    .query_map([], T::read)
                    .map_err(|e| failed(&e))?
                    .collect::<Result<Vec<T>, _>>()
                    .map_err(|e| failed(&e))
            }
            Self::Postgres(s) => sqlx::query_as(sql)
                .fetch_all(s.pool())
                .await
                .map_err(|e| failed(&e)),
        }
    }

    pub async fn close(self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }

    /// With PostgreSQL, waits (at most 5 s) until no other session of the database is busy: a
    /// process killed with SIGKILL may have sent a commit that its server session still
    /// carries out, and a snapshot taken before it ends would miss it.
    async fn settle(&self) -> Result<(), String> {
        let Self::Postgres(_) = self else {
            return Ok(());
        };
        let begun = tokio::time::Instant::now();
        while begun.elapsed() < std::time::Duration::from_secs(5) {
            let busy = self
                .rows::<(i64,)>(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND state <> 'idle'",
                )
                .await?;
            if busy.first().is_none_or(|(n,)| *n == 0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub async fn handler_snapshot(&self) -> Result<HandlerSnapshot, String> {
        self.settle().await?;
        let open_claims = self
            .rows::<(String,)>("SELECT request_id FROM handler_starts WHERE answer IS NULL")
            .await?
            .into_iter()
            .map(|(r,)| r)
            .collect();
        let running = self
            .store()
            .list_unfinished_async()
            .await
            .map_err(|e| format!("cannot list running operations: {e}"))?
            .into_iter()
            .map(|op| (op.request_id, op.token))
            .collect();
        Ok(HandlerSnapshot {
            open_claims,
            running,
        })
    }

    /// How many completions wait in the outbox.
    pub async fn pending_deliveries(&self) -> Result<i64, String> {
        let rows = self
            .rows::<(i64,)>("SELECT COUNT(*) FROM completion_deliveries WHERE state = 'pending'")
            .await?;
        Ok(rows.first().map_or(0, |(n,)| *n))
    }

    pub async fn handler_records(&self) -> Result<HandlerRecords, String> {
        Ok(HandlerRecords {
            starts: self
                .rows("SELECT request_id, answer, token FROM handler_starts")
                .await?,
            operations: self
                .rows("SELECT token, request_id, state FROM handler_operations")
                .await?,
            deliveries: self
                .rows("SELECT token, state, last_error FROM completion_deliveries")
                .await?,
        })
    }

    /// How many operations the caller recorded, and how many of them are unfinished.
    pub async fn caller_counts(&self) -> Result<(usize, usize), String> {
        let all = self
            .rows::<(i64,)>("SELECT COUNT(*) FROM caller_operations")
            .await?;
        let unfinished = self
            .store()
            .list_unfinished()
            .await
            .map_err(|e| format!("cannot list unfinished operations: {e}"))?;
        let all = all.first().map_or(0, |(n,)| *n);
        Ok((usize::try_from(all).unwrap_or_default(), unfinished.len()))
    }

    /// The caller's record of each request id (as `payments` calls `fraud.v1/checkTransaction`).
    pub async fn caller_records(
        &self,
        request_ids: &[String],
    ) -> Result<Vec<Option<CallerRecord>>, String> {
        let mut records = Vec::with_capacity(request_ids.len());
        for request_id in request_ids {
            let key = RequestKey {
                endpoint: "fraud-detection".into(),
                service: "fraud.v1".into(),
                operation: "checkTransaction".into(),
                request_id: request_id.clone(),
            };
            let record = self
                .store()
                .find_by_request_id(&key)
                .await
                .map_err(|e| format!("cannot read the caller's record of {request_id}: {e}"))?;
            records.push(record);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_gets_another_database() {
        assert_eq!(
            with_database("postgres://nexus@127.0.0.1:5432/nexus", "crash_1_handler").unwrap(),
            "postgres://nexus@127.0.0.1:5432/crash_1_handler"
        );
        assert_eq!(
            with_database("postgresql://u:p@db:5/x?sslmode=disable", "y").unwrap(),
            "postgresql://u:p@db:5/y?sslmode=disable"
        );
        assert!(with_database("not a url", "y").is_err());
    }
}
