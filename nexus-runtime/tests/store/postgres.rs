//! What is particular to PostgreSQL (the suite runs on it in `suite::postgres`, when
//! `NEXUS_TEST_POSTGRES_URL` names a database; see `scripts/ensure-postgres.sh`): concurrent
//! migrations, and bad URLs.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

use crate::suite;
use crate::support::postgres::Schema;

use nexus_runtime::store::{CallerStore as _, PostgresStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_concurrent() {
    let Some(schema) = Schema::create("migrations_are_idempotent_and_concurrent").await else {
        return;
    };
    let record = suite::fixtures::record(1, suite::fixtures::at(0));
    let first = schema.connect().await;
    first.insert(&record).await.unwrap();
    first.close().await;
    let (a, b) = tokio::join!(schema.connect(), schema.connect());
    assert_eq!(a.applied_migrations().await.unwrap(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(b.get(record.id).await.unwrap(), Some(record));
    a.close().await;
    b.close().await;
    schema.remove().await;
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
