//! The store suite against PostgreSQL, when `NEXUS_TEST_POSTGRES_URL` names a database (see
//! `scripts/ensure-postgres.sh`); each test gets its own schema, dropped at its end. Without the
//! variable every test passes after printing that it was skipped.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod store_support;

use std::str::FromStr as _;
use std::sync::{Arc, Mutex};

use nexus_runtime::store::sqlx::postgres::{PgConnectOptions, PgPool};
use nexus_runtime::store::sqlx::{self, AssertSqlSafe};
use nexus_runtime::store::{CallerStore as _, PostgresStore, Store};

const URL_VARIABLE: &str = "NEXUS_TEST_POSTGRES_URL";

struct Postgres {
    url: String,
    schema: String,
    handles: Mutex<Vec<PostgresStore>>,
}

/// The database URL, or `None` after saying (once per run, past the test harness's output
/// capture) that the PostgreSQL tests are skipped.
fn database_url() -> Option<String> {
    static NOTICE: std::sync::Once = std::sync::Once::new();
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            NOTICE.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping the PostgreSQL store tests: {URL_VARIABLE} is not set \
                     (export {URL_VARIABLE}=\"$(scripts/ensure-postgres.sh)\" to run them)"
                );
            });
            None
        }
    }
}

async fn admin(url: &str) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"))
}

async fn connect_in_schema(url: &str, schema: &str) -> PostgresStore {
    let options = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema)]);
    PostgresStore::connect_with(options, 4).await.unwrap()
}

impl Postgres {
    async fn handle(&self) -> PostgresStore {
        let store = connect_in_schema(&self.url, &self.schema).await;
        self.handles.lock().unwrap().push(store.clone());
        store
    }
}

impl store_support::Harness for Postgres {
    async fn open(name: &str) -> Option<Self> {
        let url = database_url()?;
        let schema = format!(
            "nexus_test_{name}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let admin = admin(&url).await;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let harness = Self {
            url,
            schema,
            handles: Mutex::default(),
        };
        harness.handle().await;
        Some(harness)
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.handles.lock().unwrap()[0].clone())
    }

    async fn another_handle(&self) -> Arc<dyn Store> {
        Arc::new(self.handle().await)
    }

    async fn reopen(&self) -> Option<Arc<dyn Store>> {
        let open: Vec<PostgresStore> = std::mem::take(&mut *self.handles.lock().unwrap());
        for store in open {
            store.close().await;
        }
        Some(Arc::new(self.handle().await))
    }

    async fn cleanup(self) {
        let open: Vec<PostgresStore> = std::mem::take(&mut *self.handles.lock().unwrap());
        for store in open {
            store.close().await;
        }
        let admin = admin(&self.url).await;
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA \"{}\" CASCADE",
            self.schema
        )))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
    }
}

store_suite!(Postgres);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_concurrent() {
    use store_support::Harness as _;
    let Some(harness) = Postgres::open("migrations_are_idempotent_and_concurrent").await else {
        return;
    };
    let record = store_support::fixtures::record(1, store_support::fixtures::at(0));
    let first = harness.handles.lock().unwrap()[0].clone();
    first.insert(&record).await.unwrap();
    first.close().await;
    let (a, b) = tokio::join!(
        connect_in_schema(&harness.url, &harness.schema),
        connect_in_schema(&harness.url, &harness.schema)
    );
    assert_eq!(a.applied_migrations().await.unwrap(), [1, 2, 3, 4]);
    assert_eq!(b.get(record.id).await.unwrap(), Some(record));
    a.close().await;
    b.close().await;
    harness.cleanup().await;
}

#[tokio::test]
async fn connect_reports_a_bad_url() {
    for url in ["mysql://nexus@127.0.0.1/nexus", "127.0.0.1:5432", ""] {
        let err = PostgresStore::connect(url).await.unwrap_err();
        assert!(
            err.to_string().contains("invalid PostgreSQL URL"),
            "{url}: {err}"
        );
    }
    let err = PostgresStore::connect("postgres://nexus@127.0.0.1:notaport/nexus")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid PostgreSQL URL"), "{err}");
}
