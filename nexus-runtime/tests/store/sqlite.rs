//! What is particular to SQLite (the suite runs on it in `suite::sqlite`): creating the data
//! directory, WAL mode, repeated migrations, databases left by earlier releases.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use crate::suite;

use nexus_runtime::store::{CallerStore as _, SqliteDurability, SqliteStore};

#[tokio::test]
async fn open_creates_the_data_directory_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/data");
    let store = SqliteStore::open_in_dir(&nested).await.unwrap();
    assert_eq!(store.path(), nested.join(SqliteStore::FILE_NAME));
    store
        .insert(&suite::fixtures::record(1, suite::fixtures::at(0)))
        .await
        .unwrap();
    assert!(store.path().exists());
    assert!(
        nested.join("nexus.sqlite3-wal").exists(),
        "WAL mode keeps a -wal file next to the database while it is open"
    );
    // The journal mode is kept in the file: another connection reads it.
    let mode: String = rusqlite::Connection::open(store.path())
        .unwrap()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    let by_dir = SqliteStore::open(&nested).await.unwrap();
    assert_eq!(
        by_dir.path(),
        store.path(),
        "an existing directory means the file in it"
    );
    let file = dir.path().join("x/y/custom.db");
    let by_file = SqliteStore::open(&file).await.unwrap();
    assert_eq!(by_file.path(), file);
    assert!(file.exists());
}

#[tokio::test]
async fn durability_sets_what_a_commit_waits_for() {
    // (`synchronous` belongs to the write connection: the store's unit tests read it there.)
    let dir = tempfile::tempdir().unwrap();
    let default = SqliteStore::open(dir.path().join("default.db"))
        .await
        .unwrap();
    assert_eq!(default.durability(), SqliteDurability::PowerLoss);
    let fast = SqliteStore::open_with(dir.path().join("fast.db"), SqliteDurability::ProcessCrash)
        .await
        .unwrap();
    assert_eq!(fast.durability(), SqliteDurability::ProcessCrash);
    let record = suite::fixtures::record(1, suite::fixtures::at(0));
    fast.insert(&record).await.unwrap();
    fast.close().await;
    // What was committed is there for the next process, whatever the setting it opens with.
    let reopened = SqliteStore::open(dir.path().join("fast.db")).await.unwrap();
    assert_eq!(reopened.get(record.id).await.unwrap(), Some(record));
    let in_dir = SqliteStore::open_with(dir.path(), SqliteDurability::ProcessCrash)
        .await
        .unwrap();
    assert_eq!(in_dir.path(), dir.path().join(SqliteStore::FILE_NAME));
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let record = suite::fixtures::record(1, suite::fixtures::at(0));
    first.insert(&record).await.unwrap();
    let second = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    first.close().await;
    let third = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    assert_eq!(
        third.applied_migrations().await.unwrap(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(
        second.applied_migrations().await.unwrap(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(third.get(record.id).await.unwrap(), Some(record));
}

#[tokio::test]
async fn open_reports_an_unusable_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let err = SqliteStore::open_in_dir(blocker.join("data"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("cannot create data directory"),
        "{message}"
    );
    assert!(message.contains("file/data"), "{message}");

    std::fs::write(dir.path().join("garbage.db"), vec![0x42; 4096]).unwrap();
    let err = SqliteStore::open(dir.path().join("garbage.db"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("garbage.db"), "{err}");
}

/// Group commit: concurrent writes share batch transactions. Every write that returned is
/// committed (a fresh handle reads it); one that fails (a duplicate id) fails alone, the others of
/// its batch commit; a duplicate request id finds the operation recorded in the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_batched_and_each_lands_or_fails_alone() {
    use nexus_runtime::store::{InsertOutcome, RequestKey, StoreError};
    use suite::fixtures::{at, record};

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..300u128 {
        let store = store.clone();
        writes.spawn(async move {
            let mut r = record(n, at(n as u64));
            if n % 50 == 49 {
                // Another operation's id: the primary key refuses it.
                r.id = record(n - 1, at(0)).id;
                r.request_id = format!("dup-id-{n}");
            } else if n % 30 == 29 {
                // Another operation's request id: follows that one.
                r.id = uuid::Uuid::from_u128(0xd0_0000 + n);
                r.request_id = format!("req-{}", n - 1);
            }
            (n, store.insert(&r).await)
        });
    }
    // Which of a pair wins depends on the order: one is inserted, the other refused (the same
    // id) or following it (the same request id).
    let mut kinds = std::collections::BTreeMap::new();
    while let Some(joined) = writes.join_next().await {
        let (n, outcome) = joined.unwrap();
        let kind = match outcome {
            Ok(InsertOutcome::Inserted) => "inserted",
            Ok(InsertOutcome::Exists(existing)) => {
                let asked = if n % 30 == 29 { n - 1 } else { n };
                assert_eq!(existing.request_id, format!("req-{asked}"), "{n}");
                "exists"
            }
            Err(StoreError::Duplicate(_)) => "duplicate",
            Err(e) => panic!("{n}: {e}"),
        };
        kinds.insert(n, kind);
    }
    for n in 0..300u128 {
        let pair = |other| {
            let mut got = [kinds[&(n - 1)], kinds[&n]];
            got.sort_unstable();
            assert_eq!(got, [other, "inserted"], "operations {} and {n}", n - 1);
        };
        if n % 50 == 49 {
            pair("duplicate");
        } else if n % 30 == 29 {
            pair("exists");
        }
    }
    let inserted = kinds.values().filter(|k| **k == "inserted").count();
    assert_eq!(inserted, 300 - 6 - 8);
    store.close().await;
    let fresh = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    assert_eq!(fresh.list_unfinished().await.unwrap().len(), inserted);
    let key = RequestKey {
        request_id: "req-28".into(),
        ..suite::fixtures::request_key(0)
    };
    assert!(fresh.find_by_request_id(&key).await.unwrap().is_some());
}

/// A write abandoned in the middle of its batch (its future dropped) loses nothing of the
/// others: every write that returned is committed, and the store goes on writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_dropped_in_its_batch_loses_nothing_else() {
    use nexus_runtime::store::InsertOutcome;
    use suite::fixtures::{at, record};

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..200u128 {
        let store = store.clone();
        writes.spawn(async move {
            let r = record(n, at(n as u64));
            if n % 7 == 0 {
                // Dropped at once, or after a few polls, wherever it is then.
                let limit = std::time::Duration::from_micros((n as u64 % 5) * 200);
                (n, tokio::time::timeout(limit, store.insert(&r)).await.ok())
            } else {
                (n, Some(store.insert(&r).await))
            }
        });
    }
    // No write is left waiting for a batch that a dropped write abandoned.
    let mut landed = Vec::new();
    let all = async {
        while let Some(joined) = writes.join_next().await {
            let (n, outcome) = joined.unwrap();
            match outcome {
                Some(Ok(InsertOutcome::Inserted)) => landed.push(n),
                Some(Err(e)) if e.is_retryable() => {}
                Some(other) => panic!("{n}: {other:?}"),
                None => assert_eq!(n % 7, 0),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), all)
        .await
        .expect("every write ends");
    assert_eq!(
        store.insert(&record(1000, at(0))).await.unwrap(),
        InsertOutcome::Inserted,
        "the store goes on writing"
    );
    store.close().await;
    let fresh = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let ids: std::collections::HashSet<_> = fresh
        .list_unfinished()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    for n in landed {
        assert!(ids.contains(&record(n, at(0)).id), "{n} was committed");
    }
}

/// Records made before request ids were scoped by principal belong to the anonymous principal
/// after migration 3: their answers are replayed to anonymous callers only, and their operations
/// read back as started by the anonymous principal.
#[tokio::test]
async fn records_from_before_principals_belong_to_the_anonymous_principal() {
    use nexus_runtime::security::Principal;
    use nexus_runtime::store::{BeginStart, HandlerStore as _, StartAnswer, StartKey};
    use suite::fixtures::at;

    // A database at schema version 2, as earlier releases left it: migrated by sqlx, which
    // records the versions in a table of its own.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteStore::FILE_NAME);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!(
        "../../migrations/sqlite/0001_operation_store.sql"
    ))
    .unwrap();
    conn.execute_batch(include_str!(
        "../../migrations/sqlite/0002_delivery_token_index.sql"
    ))
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
         checksum BLOB NOT NULL, execution_time BIGINT NOT NULL); \
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (1, 'operation store', TRUE, x'', 0), (2, 'delivery token index', TRUE, x'', 0);",
    )
    .unwrap();
    for statement in [
        "INSERT INTO handler_starts (service, operation, request_id, answer, token, links, \
         created_at_us, answered_at_us) VALUES ('fraud.v1', 'check', 'r-1', 'async', 'tok-old', \
         '[]', 1, 1)",
        "INSERT INTO handler_operations (token, service, operation, request_id, input_data, \
         input_headers, headers, links, state, resumable, started_at_us) VALUES ('tok-old', \
         'fraud.v1', 'check', 'r-1', x'', '{}', '{}', '[]', 'running', 0, 1)",
    ] {
        conn.execute(statement, []).unwrap();
    }
    drop(conn);

    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    let op = store.get_async("tok-old").await.unwrap().unwrap();
    assert_eq!(op.principal, Principal::anonymous());
    let key = |principal: &str| StartKey {
        principal: principal.to_owned(),
        service: "fraud.v1".into(),
        operation: "check".into(),
        request_id: "r-1".into(),
    };
    assert_eq!(
        store.begin_start(&key(""), at(0), at(10)).await.unwrap(),
        BeginStart::Answered(StartAnswer::Async {
            token: "tok-old".into(),
            links: Vec::new(),
        })
    );
    assert!(matches!(
        store
            .begin_start(&key("payments"), at(0), at(10))
            .await
            .unwrap(),
        BeginStart::Claimed(_)
    ));
}

/// The CHECK constraints and the unfinished operations' index are written without IN lists:
/// a write that evaluates them builds no temporary table (SQLite builds one for an IN list of
/// three constants or more, at every run of the statement). They still refuse what they
/// refused.
#[tokio::test]
async fn writes_build_no_temporary_table_and_the_checks_still_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let opcodes = |sql: &str| -> Vec<String> {
        let mut statement = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        statement
            .query_map([], |row| row.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for (table, column) in [
        ("caller_operations", "state"),
        ("handler_starts", "answer"),
        ("handler_operations", "state"),
        ("completion_deliveries", "outcome"),
        ("completion_deliveries", "state"),
    ] {
        let sql = format!("UPDATE {table} SET {column} = {column}");
        let ops = opcodes(&sql);
        assert!(ops.iter().any(|op| op == "Halt"), "{sql}: {ops:?}");
        assert!(
            !ops.iter().any(|op| op == "OpenEphemeral"),
            "{sql}: {ops:?}"
        );
    }
    let unfinished = opcodes(
        "SELECT * FROM caller_operations WHERE (state <> 'succeeded' AND state <> 'failed' \
         AND state <> 'canceled' AND state <> 'timed_out') ORDER BY scheduled_at_us, id",
    );
    assert!(
        !unfinished.iter().any(|op| op == "OpenEphemeral"),
        "{unfinished:?}"
    );

    let refused = conn
        .execute(
            "INSERT INTO handler_starts (service, operation, request_id, answer, created_at_us) \
             VALUES ('s', 'o', 'r', 'maybe', 1)",
            [],
        )
        .unwrap_err();
    assert!(refused.to_string().contains("CHECK"), "{refused}");
    conn.execute(
        "INSERT INTO handler_starts (service, operation, request_id, answer, created_at_us) \
         VALUES ('s', 'o', 'r', 'sync', 1)",
        [],
    )
    .unwrap();
}

/// A database at schema version 6 with leased operations, as the release before owner
/// heartbeats left it: after the migration its leases read as they were, and a renewal extends
/// them through the owner's heartbeat (the caller's and the handler's).
#[tokio::test]
async fn leases_from_before_heartbeats_are_renewed_by_them() {
    use std::time::Duration;

    use nexus_runtime::store::{HandlerStore as _, Lease, OperationId};
    use suite::fixtures::at;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteStore::FILE_NAME);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for migration in [
        include_str!("../../migrations/sqlite/0001_operation_store.sql"),
        include_str!("../../migrations/sqlite/0002_delivery_token_index.sql"),
        include_str!("../../migrations/sqlite/0003_callback_secret.sql"),
        include_str!("../../migrations/sqlite/0004_principal.sql"),
        include_str!("../../migrations/sqlite/0005_cancel_requested_index.sql"),
        include_str!("../../migrations/sqlite/0006_checks_without_in_lists.sql"),
    ] {
        conn.execute_batch(migration).unwrap();
    }
    conn.pragma_update(None, "user_version", 6).unwrap();
    let micros = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
    };
    let id = OperationId::from_u128(7);
    conn.execute(
        "INSERT INTO handler_operations (token, service, operation, request_id, input_data, \
         input_headers, headers, links, state, resumable, started_at_us, lease_owner, \
         lease_expires_at_us) VALUES ('tok-1', 'fraud.v1', 'check', 'r-1', x'', '{}', '{}', \
         '[]', 'running', 1, ?1, 'a', ?2)",
        (micros(at(1)), micros(at(30))),
    )
    .unwrap();
    conn.execute(
        "INSERT INTO caller_operations (id, endpoint, service, operation, request_id, \
         input_data, input_headers, options, state, version, attempt, start_links, \
         completion_links, scheduled_at_us, lease_owner, lease_expires_at_us) VALUES (?1, \
         'fraud', 'fraud.v1', 'check', 'r-1', x'', '{}', '{}', 'scheduled', 0, 0, '[]', '[]', \
         ?2, 'a', ?3)",
        (id.to_string(), micros(at(1)), micros(at(30))),
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    let handler_lease = || async { store.get_async("tok-1").await.unwrap().unwrap().lease };
    let caller_lease = || async { store.get(id).await.unwrap().unwrap().lease };
    assert_eq!(handler_lease().await, Some(Lease::new("a", at(30))));
    assert_eq!(caller_lease().await, Some(Lease::new("a", at(30))));

    let lease = Duration::from_secs(30);
    assert_eq!(store.renew_async("a", at(40), lease).await.unwrap(), 1);
    assert_eq!(store.renew("a", at(40), lease).await.unwrap(), [id]);
    assert_eq!(handler_lease().await, Some(Lease::new("a", at(70))));
    assert_eq!(caller_lease().await, Some(Lease::new("a", at(70))));
    assert!(
        store
            .claim_async("b", at(69), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim("b", at(69), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_async("b", at(70), lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.claim("b", at(70), lease, 10).await.unwrap().len(), 1);
}
