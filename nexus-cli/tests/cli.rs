//! The `nexus` binary end to end: calls (sync, async, no-wait, cancel, failures and their exit
//! codes) against the fraud team's handler served on a loopback port, definition export and
//! diff, the endpoint registry file and its audit log, a caller's store, and a handler's dead
//! completion deliveries.

mod support;

use std::time::Duration;

use nexus_runtime::Client;
use nexus_runtime::registry::AuditLog;
use nexus_runtime::transport::HttpTransport;
use serde_json::json;
use support::{fraud_caller, fraud_dispatcher, fraud_handler, fraud_server, nexus, serve};

const COMMITTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../contracts/fraud/fraud.v1.nexusrpc.json"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_sync_and_async_operations_and_prints_their_results() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = fraud_handler(Duration::from_millis(200)).await;

    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "getQuickScore",
            r#"{"userId":"alice"}"#,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let score = nexus_examples::fraud_desk::quick_score("alice");
    assert_eq!(run.json(), json!({"score": score}));

    // Async: awaited through the tool's own callback receiver; the input from a file.
    let input = dir.path().join("check.json");
    std::fs::write(
        &input,
        r#"{"transactionId":"t-1","amount":10.0,"userId":"alice"}"#,
    )
    .unwrap();
    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "checkTransaction",
            "@check.json",
            "--request-id",
            "t-1",
            "--header",
            "x-tenant=acme",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["approved"], json!(true), "{out}");
    assert!(out["riskScore"].is_u64(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_prints_the_token_and_cancel_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = fraud_handler(Duration::from_secs(60)).await;
    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "checkTransaction",
            r#"{"transactionId":"t-2","amount":5.0,"userId":"bob"}"#,
            "--no-wait",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.json()["token"].as_str().expect("a token").to_owned();

    let run = nexus(
        dir.path(),
        &["cancel", &url, "fraud.v1", "checkTransaction", &token],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("cancel requested"), "{}", run.stderr);

    let run = nexus(
        dir.path(),
        &[
            "cancel",
            &url,
            "fraud.v1",
            "checkTransaction",
            "no-such-token",
        ],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("handler error NOT_FOUND"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_have_distinct_exit_codes_and_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = fraud_handler(Duration::from_millis(10)).await;

    // The operation failed: 1, with the handler's message.
    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "checkTransaction",
            r#"{"transactionId":"t-3","amount":-1.0,"userId":"eve"}"#,
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .contains("nexus: error: operation failed: transaction t-3 has an invalid amount -1"),
        "{}",
        run.stderr
    );

    // The handler refused the input: 3, naming the field.
    let run = nexus(
        dir.path(),
        &["call", &url, "fraud.v1", "getQuickScore", r#"{"user":"x"}"#],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("handler error BAD_REQUEST"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("userId"), "{}", run.stderr);

    // An unknown operation: 3, NOT_FOUND.
    let run = nexus(dir.path(), &["call", &url, "fraud.v1", "nope", "{}"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("NOT_FOUND"), "{}", run.stderr);

    // Nobody listening: 3, a transport error, after one attempt.
    let run = nexus(
        dir.path(),
        &[
            "call",
            "http://127.0.0.1:9",
            "fraud.v1",
            "getQuickScore",
            "{}",
            "--attempts",
            "1",
            "--timeout",
            "5s",
        ],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);

    // Usage: input that is not JSON, an endpoint name the registry does not know.
    let run = nexus(
        dir.path(),
        &["call", &url, "fraud.v1", "getQuickScore", "{oops"],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not JSON"), "{}", run.stderr);
    let run = nexus(
        dir.path(),
        &["call", "fraud", "fraud.v1", "getQuickScore", "{}"],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("neither a URL nor an endpoint of the registry"),
        "{}",
        run.stderr
    );
    let run = nexus(dir.path(), &["call"]).await;
    assert_eq!(run.code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_added_listed_used_and_removed_with_an_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = fraud_handler(Duration::from_millis(10)).await;
    let run = nexus(
        dir.path(),
        &[
            "endpoint",
            "--as",
            "alice",
            "add",
            "fraud",
            &url,
            "--description",
            "Fraud detection",
            "--allow",
            "payments",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = nexus(dir.path(), &["endpoint", "list"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("fraud")
            && run.stdout.contains(&url)
            && run.stdout.contains("payments"),
        "{}",
        run.stdout
    );

    // The name resolves through the registry file.
    let run = nexus(
        dir.path(),
        &[
            "call",
            "fraud",
            "fraud.v1",
            "getQuickScore",
            r#"{"userId":"a"}"#,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = nexus(dir.path(), &["endpoint", "add", "bad name", &url]).await;
    assert_eq!(run.code, 2);
    let run = nexus(dir.path(), &["endpoint", "--as", "bob", "remove", "fraud"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = nexus(dir.path(), &["endpoint", "list", "--json"]).await;
    assert_eq!(run.json(), json!({}));
    let run = nexus(dir.path(), &["endpoint", "remove", "fraud"]).await;
    assert_eq!(run.code, 2);

    let events = AuditLog::read(dir.path().join("nexus-endpoints.audit.jsonl")).unwrap();
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.who.as_str(), e.action.as_str(), e.endpoint.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("alice", "add", "fraud"), ("bob", "remove", "fraud")]
    );
    assert!(events[0].detail.contains(&url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_are_exported_from_a_handler_and_diffed() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = fraud_handler(Duration::from_millis(10)).await;
    let run = nexus(dir.path(), &["definition", "export", &url]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, std::fs::read_to_string(COMMITTED).unwrap());

    let run = nexus(dir.path(), &["definition", "diff", COMMITTED, &url]).await;
    assert_eq!(
        (run.code, run.stdout.trim()),
        (0, "no changes"),
        "{}",
        run.stderr
    );

    // A breaking change: a required input field; a compatible one: an operation added.
    let mut changed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(COMMITTED).unwrap()).unwrap();
    changed["types"]["GetQuickScoreInput"]["properties"]["region"] = json!({"type": "string"});
    changed["types"]["GetQuickScoreInput"]["required"] = json!(["userId", "region"]);
    changed["services"]["fraud.v1"]["operations"]["ping"] = json!({});
    let new = dir.path().join("new.json");
    std::fs::write(&new, changed.to_string()).unwrap();
    let run = nexus(dir.path(), &["definition", "diff", COMMITTED, "new.json"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("breaking     fraud.v1/getQuickScore input.region: field added as required"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("compatible   fraud.v1/ping: operation added"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("1 breaking change, 1 compatible change"),
        "{}",
        run.stdout
    );
    let run = nexus(
        dir.path(),
        &[
            "definition",
            "diff",
            COMMITTED,
            "new.json",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(
        (report["breaking"].as_u64(), report["compatible"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["changes"][0]["kind"], "required-field-added");
    assert_eq!(report["changes"][0]["path"], "input.region");

    // The other way round, removing the operation breaks its callers; removing the field does not.
    let run = nexus(dir.path(), &["definition", "diff", "new.json", COMMITTED]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("breaking     fraud.v1/ping: operation removed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("compatible   fraud.v1/getQuickScore input.region: field removed"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_lists_shows_and_cancels_a_callers_operations() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("caller.sqlite3");
    let db_arg = db.to_str().unwrap().to_owned();
    let (url, _server) = fraud_handler(Duration::from_secs(60)).await;
    let store = nexus_runtime::store::SqliteStore::open(&db).await.unwrap();
    let listener = nexus_runtime::server::CallbackListener::bind_loopback()
        .await
        .unwrap();
    let client = fraud_caller(&url, std::sync::Arc::new(store))
        .callback_url(listener.callback_url())
        // Re-reads its records, so it notices a cancel requested through the store.
        .replicas(
            nexus_runtime::client::ReplicaConfig::new().poll_interval(Duration::from_millis(100)),
        )
        .build();
    let _receiver = listener.serve(client.clone()).unwrap();
    let fraud = fraud_contract::FraudClient::new(client.clone(), "fraud");
    let score = fraud
        .get_quick_score(fraud_contract::GetQuickScoreInput {
            user_id: "a".into(),
        })
        .request_id("score-1")
        .await
        .unwrap();
    let check = fraud
        .check_transaction(fraud_contract::CheckTransactionInput {
            transaction_id: "t-9".into(),
            amount: 3.0,
            user_id: "a".into(),
        })
        .request_id("check-1")
        .start()
        .await
        .unwrap();
    let id = check.operation_id().to_string();

    let run = nexus(dir.path(), &["ops", "list", "--store", &db_arg]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&id) && run.stdout.contains("started"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("getQuickScore"),
        "finished operations are listed with --all: {}",
        run.stdout
    );
    let run = nexus(
        dir.path(),
        &["ops", "list", "--all", "--json", "--store", &db_arg],
    )
    .await;
    let listed = run.json();
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["operation"].as_str().unwrap(),
                o["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("checkTransaction", "started"),
            ("getQuickScore", "succeeded")
        ]
    );
    assert_eq!(listed[1]["result"], json!({"score": score.score}));

    let run = nexus(dir.path(), &["ops", "show", &id, "--store", &db_arg]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("requestId               check-1"),
        "{}",
        run.stdout
    );
    let run = nexus(
        dir.path(),
        &["ops", "show", &id, "--json", "--store", &db_arg],
    )
    .await;
    let shown = run.json();
    assert_eq!(shown["requestId"], "check-1");
    assert_eq!(shown["token"].as_str(), check.token());
    assert_eq!(shown["attempt"], 1);

    let run = nexus(dir.path(), &["ops", "cancel", &id, "--store", &db_arg]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = nexus(
        dir.path(),
        &["ops", "show", &id, "--json", "--store", &db_arg],
    )
    .await;
    assert!(
        run.json()["cancelRequestedAt"].is_string(),
        "{}",
        run.stdout
    );
    // The client driving it learns of the request from its store and carries it out.
    let ended = tokio::time::timeout(Duration::from_secs(30), check.result())
        .await
        .unwrap();
    assert!(ended.is_err(), "{ended:?}");

    let run = nexus(
        dir.path(),
        &["ops", "show", "not-an-id", "--store", &db_arg],
    )
    .await;
    assert_eq!(run.code, 2);
    let run = nexus(dir.path(), &["ops", "list", "--store", "missing.sqlite3"]).await;
    assert_eq!(run.code, 2);
    let run = nexus(dir.path(), &["deliveries", "list", "--store", &db_arg]).await;
    assert_eq!((run.code, run.stdout.trim()), (0, "no dead deliveries"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_runs_calls_and_summarizes_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = fraud_handler(Duration::from_millis(10)).await;
    let run = nexus(
        dir.path(),
        &[
            "load",
            &url,
            "fraud.v1",
            "getQuickScore",
            r#"{"userId":"a"}"#,
            "--count",
            "40",
            "--concurrency",
            "4",
            "--json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = run.json();
    assert_eq!(summary["succeeded"], 40);
    assert_eq!(summary["failed"], 0);
    let latency = &summary["latencyMs"];
    assert!(
        latency["p50"].as_f64() <= latency["p99"].as_f64()
            && latency["p99"].as_f64() <= latency["max"].as_f64(),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_are_generated_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let run = nexus(dir.path(), &["completions", shell]).await;
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("definition"), "{shell}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_lists_and_retries_a_dead_completion() {
    use nexus_runtime::codec::{Content, JSON};
    use nexus_runtime::completion::Callback;
    use nexus_runtime::server::CallbackListener;
    use nexus_runtime::service::{DurabilityOptions, OutboxOptions};
    use nexus_runtime::store::{OutboxStore as _, SqliteStore};
    use nexus_runtime::transport::{StartRequest, Transport as _};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("handler.sqlite3");
    let db_arg = db.to_str().unwrap().to_owned();
    let store = std::sync::Arc::new(SqliteStore::open(&db).await.unwrap());
    let dispatcher = fraud_dispatcher(Duration::from_millis(10))
        .store(store.clone())
        .durability(
            DurabilityOptions::default()
                .outbox(OutboxOptions::default().poll_interval(Duration::from_millis(50))),
        )
        .build();
    let (url, _running) = serve(fraud_server(dispatcher)).await;
    // A receiver whose client knows no operation: it answers every completion NOT_FOUND, which
    // the handler's outbox gives up at once.
    let listener = CallbackListener::bind_loopback().await.unwrap();
    let callback_url = format!(
        "{}/{}?secret=s",
        listener.callback_url(),
        "0c9f2a4e-0000-4000-8000-000000000001"
    );
    let _receiver = listener.serve(Client::builder().build()).unwrap();
    let started = HttpTransport::new(&url)
        .unwrap()
        .start(StartRequest {
            service: "fraud.v1".into(),
            operation: "checkTransaction".into(),
            request_id: "dead-1".into(),
            headers: Default::default(),
            links: Vec::new(),
            callback: Some(Callback::Url {
                url: callback_url,
                headers: Default::default(),
            }),
            request_deadline: None,
            operation_timeout: None,
            input: Content::new(JSON, r#"{"transactionId":"t","amount":1.0,"userId":"u"}"#),
        })
        .await
        .unwrap();
    assert!(matches!(
        started,
        nexus_runtime::transport::StartResponse::Async { .. }
    ));

    let dead = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let dead = store.list_dead_deliveries(10).await.unwrap();
            if let Some(d) = dead.into_iter().next() {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the delivery is given up");
    assert_eq!(dead.attempts, 1);

    let run = nexus(
        dir.path(),
        &["deliveries", "list", "--json", "--store", &db_arg],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = run.json();
    assert_eq!(listed[0]["id"], dead.id.to_string());
    assert_eq!(listed[0]["completionState"], "succeeded");
    assert!(
        !listed[0]["url"].as_str().unwrap().contains("secret=s"),
        "the secret is redacted"
    );

    let run = nexus(
        dir.path(),
        &[
            "deliveries",
            "retry",
            &dead.id.to_string(),
            "--store",
            &db_arg,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The outbox sends it again (and gives it up again: the receiver still refuses it).
    let again = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let d = store.get_delivery(dead.id).await.unwrap().unwrap();
            if d.attempts == 2 {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the delivery is sent again");
    assert_eq!(again.state.as_str(), "dead");
    let run = nexus(
        dir.path(),
        &[
            "deliveries",
            "retry",
            "0c9f2a4e-0000-4000-8000-000000000002",
            "--store",
            &db_arg,
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// `ops` and `deliveries` on a PostgreSQL store (a database of its own), when
/// `NEXUS_TEST_POSTGRES_URL` names a server (`scripts/test.sh` sets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_on_a_postgresql_store() {
    use nexus_runtime::store::PostgresStore;
    use nexus_runtime::store::sqlx::{self, AssertSqlSafe, Connection as _};

    let Ok(base) = std::env::var("NEXUS_TEST_POSTGRES_URL") else {
        eprintln!("skipping `ops_on_a_postgresql_store`: NEXUS_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("nexus_cli_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::postgres::PgConnection::connect(&base).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{name}");

    let dir = tempfile::tempdir().unwrap();
    let (handler, _server) = fraud_handler(Duration::from_millis(10)).await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let client = fraud_caller(&handler, std::sync::Arc::new(store))
        .callback_url("http://127.0.0.1:9/nexus/callback")
        .build();
    let score = fraud_contract::FraudClient::new(client.clone(), "fraud")
        .get_quick_score(fraud_contract::GetQuickScoreInput {
            user_id: "pg".into(),
        })
        .request_id("pg-1")
        .await
        .unwrap();

    let run = nexus(
        dir.path(),
        &["ops", "list", "--all", "--json", "--store", &url],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = run.json();
    assert_eq!(listed[0]["requestId"], "pg-1");
    assert_eq!(listed[0]["result"], json!({"score": score.score}));
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let run = nexus(dir.path(), &["ops", "show", &id, "--store", &url]).await;
    assert!(run.stdout.contains("succeeded"), "{}", run.stdout);
    let run = nexus(dir.path(), &["deliveries", "retry", &id, "--store", &url]).await;
    assert_eq!(run.code, 2, "not a dead delivery: {}", run.stderr);

    drop(client);
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_authenticates_calls_and_definition_reads() {
    use nexus_runtime::security::{BearerAuthenticator, StaticTokens};

    let dir = tempfile::tempdir().unwrap();
    let server = fraud_server(fraud_dispatcher(Duration::from_millis(10)).build()).authenticator(
        BearerAuthenticator::new(StaticTokens::new().token("payments", "s3cret")),
    );
    let (url, _running) = serve(server).await;
    let input = r#"{"transactionId":"t-a","amount":1.0,"userId":"a"}"#;
    let run = nexus(
        dir.path(),
        &["call", &url, "fraud.v1", "checkTransaction", input],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("UNAUTHENTICATED"), "{}", run.stderr);
    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "checkTransaction",
            input,
            "--token",
            "s3cret",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["approved"], json!(true));
    let run = nexus(
        dir.path(),
        &["definition", "export", &url, "--token", "s3cret"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\"fraud.v1\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_handler_is_called_with_its_ca() {
    use nexus_runtime::tls::TlsServerConfig;

    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = support::loopback_certificates();
    for (name, pem) in [
        ("ca.pem", &ca),
        ("server.pem", &chain),
        ("server.key", &key),
    ] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let tls = TlsServerConfig::from_pem_files(
        dir.path().join("server.pem"),
        dir.path().join("server.key"),
    )
    .build()
    .unwrap();
    let server = fraud_server(fraud_dispatcher(Duration::from_millis(10)).build()).tls(tls);
    let (url, _running) = serve(server).await;
    assert!(url.starts_with("https://"), "{url}");
    let input = r#"{"transactionId":"t-tls","amount":1.0,"userId":"a"}"#;
    // Without the CA the certificate is not trusted: no answer.
    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "checkTransaction",
            input,
            "--attempts",
            "1",
        ],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    // With it: a sync and an async call (its completion comes back over plain HTTP on loopback).
    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "getQuickScore",
            r#"{"userId":"a"}"#,
            "--ca",
            "ca.pem",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = nexus(
        dir.path(),
        &[
            "call",
            &url,
            "fraud.v1",
            "checkTransaction",
            input,
            "--ca",
            "ca.pem",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["approved"], json!(true));
}
