//! `fraud-handler` with an SQLite store, killed with SIGKILL while a check runs, then restarted:
//! the check is resumed and its completion reaches the caller's callback receiver; every start
//! was executed once (its retries answered from the store), as its executions log shows.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use bytes::Bytes;
use fraud_contract::{CheckTransactionInput, CheckTransactionOutput, GetQuickScoreInput};
use http::{HeaderMap, StatusCode};
use nexus_examples::executions::{Execution, ExecutionLog};
use nexus_runtime::codec;
use nexus_runtime::completion::{Callback, Completion};
use nexus_runtime::transport::{HttpTransport, StartRequest, StartResponse, Transport as _};
use support::spawn_handler;

type Received = Arc<Mutex<Vec<Completion>>>;

async fn receive(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    match nexus_runtime::protocol::parse_completion(&headers, body) {
        Ok(completion) => {
            received.lock().unwrap().push(completion);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn request(
    operation: &str,
    request_id: &str,
    input: &(impl serde::Serialize + 'static),
    callback: &str,
) -> StartRequest {
    StartRequest {
        service: "fraud.v1".into(),
        operation: operation.into(),
        request_id: request_id.into(),
        headers: BTreeMap::new(),
        links: Vec::new(),
        callback: Some(Callback::Url {
            url: callback.to_owned(),
            headers: BTreeMap::new(),
        }),
        request_deadline: Some(tokio::time::Instant::now() + Duration::from_secs(10)),
        operation_timeout: None,
        input: codec::encode(input).unwrap(),
    }
}

fn count(log: &Path, execution: &str, operation: &str, request_id: &str) -> usize {
    ExecutionLog::read(log)
        .unwrap()
        .iter()
        .filter(|e: &&Execution| {
            e.execution == execution && e.operation == operation && e.request_id == request_id
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_handler_resumes_its_checks_and_runs_each_start_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data/fraud.sqlite3");
    let log = dir.path().join("executions.jsonl");
    let store_args = [
        "--store",
        store.to_str().unwrap(),
        "--executions-log",
        log.to_str().unwrap(),
    ];

    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/callback", axum::routing::post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A check that takes a minute: it will be running when the handler is killed.
    let (mut first, url) =
        spawn_handler(&[&store_args[..], &["--check-delay-ms", "60000"]].concat());
    let handler = HttpTransport::new(&url).unwrap();
    let check = CheckTransactionInput {
        transaction_id: "tx-1".into(),
        amount: 250.0,
        user_id: "ada".into(),
    };
    let start = |id: &str| request("checkTransaction", id, &check, &callback);
    let token = match handler.start(start("req-check")).await.unwrap() {
        StartResponse::Async { token, .. } => token,
        other => panic!("expected a token, got {other:?}"),
    };
    let score = |id: &str| {
        request(
            "getQuickScore",
            id,
            &GetQuickScoreInput {
                user_id: "ada".into(),
            },
            &callback,
        )
    };
    let first_score = handler.start(score("req-score")).await.unwrap();
    // Retries of both starts: the same answers, not run again.
    assert_eq!(
        handler.start(start("req-check")).await.unwrap(),
        StartResponse::Async {
            token: token.clone(),
            links: Vec::new()
        }
    );
    assert_eq!(
        handler.start(score("req-score")).await.unwrap(),
        first_score
    );

    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let (mut second, url) = spawn_handler(&[&store_args[..], &["--check-delay-ms", "50"]].concat());
    let handler = HttpTransport::new(&url).unwrap();
    let completion = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let found = received
                .lock()
                .unwrap()
                .iter()
                .find(|c| c.token == token)
                .cloned();
            if let Some(c) = found {
                break c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the resumed check never completed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let output: CheckTransactionOutput =
        codec::decode(completion.outcome.as_ref().unwrap()).unwrap();
    assert!(output.approved);
    // After the restart too, the retry is answered from the store.
    assert_eq!(
        handler.start(start("req-check")).await.unwrap(),
        StartResponse::Async {
            token: token.clone(),
            links: Vec::new()
        }
    );
    assert_eq!(
        handler.start(score("req-score")).await.unwrap(),
        first_score
    );

    assert_eq!(count(&log, "start", "checkTransaction", "req-check"), 1);
    assert_eq!(count(&log, "resume", "checkTransaction", "req-check"), 1);
    assert_eq!(count(&log, "start", "getQuickScore", "req-score"), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "the completion is delivered once"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}
