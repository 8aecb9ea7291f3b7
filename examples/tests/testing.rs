//! The test kit on both sides of `fraud.v1` (the README's "Testing" section shows these tests):
//! the fraud team tests `FraudDesk` through a `TestEnv`, and the payments team tests its caller
//! against a `MockService` of `fraud.v1`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fraud_contract::{
    CheckTransactionInput, CheckTransactionOutput, FraudClient, FraudService, GetQuickScoreInput,
    GetQuickScoreOutput, fraud,
};
use nexus_examples::fraud_desk::{CheckRejected, FraudDesk};
use nexus_runtime::CallError;
use nexus_runtime::client::OperationState;
use nexus_runtime::error::{HandlerErrorType, OperationErrorState};
use nexus_runtime::testing::{MockService, Reply, TestEnv};

fn payment(id: &str, amount: f64) -> CheckTransactionInput {
    CheckTransactionInput {
        transaction_id: id.into(),
        amount,
        user_id: "ada".into(),
    }
}

/// The fraud team's test: `FraudDesk` behind a dispatcher with a memory store, on paused time.
#[tokio::test(start_paused = true)]
async fn fraud_desk_scores_checks_and_rejects() {
    let desk = FraudDesk::new(Duration::from_secs(30));
    let env = TestEnv::builder()
        .service(FraudService::handler(desk))
        .memory_store()
        .build();
    let fraud = FraudClient::new(env.client(), env.endpoint());

    // Sync: a score, and a clear refusal of an empty user.
    let input = GetQuickScoreInput {
        user_id: "ada".into(),
    };
    assert!(fraud.get_quick_score(input).await.unwrap().score < 100);
    let empty = GetQuickScoreInput {
        user_id: String::new(),
    };
    match fraud.get_quick_score(empty).await {
        Err(CallError::Handler(e)) => assert_eq!(e.error_type, HandlerErrorType::BadRequest),
        other => panic!("expected BAD_REQUEST, got {other:?}"),
    }

    // Async: a token at once, the verdict once the 30 s check is over (no real time passes).
    let handle = fraud
        .check_transaction(payment("tx-1", 250.0))
        .start()
        .await
        .unwrap();
    assert!(handle.token().is_some());
    env.advance(Duration::from_secs(29)).await;
    assert_eq!(handle.state(), OperationState::Started);
    env.advance(Duration::from_secs(1)).await;
    assert!(handle.result().await.unwrap().approved);

    // A negative amount fails the operation, with typed details.
    let handle = fraud
        .check_transaction(payment("tx-2", -1.0))
        .start()
        .await
        .unwrap();
    env.advance(Duration::from_secs(30)).await;
    match handle.result().await {
        Err(CallError::Operation(e)) => {
            assert_eq!(e.state, OperationErrorState::Failed);
            let details: CheckRejected = e.details().unwrap().unwrap();
            assert_eq!(details.transaction_id, "tx-2");
        }
        other => panic!("expected a failed check, got {other:?}"),
    }
}

/// The payments team's code under test: approves a payment at once when the user's quick score
/// is low, and asks for a full check otherwise.
async fn authorize(fraud: &FraudClient, payment: CheckTransactionInput) -> Result<bool, CallError> {
    let user_id = payment.user_id.clone();
    let score = fraud
        .get_quick_score(GetQuickScoreInput { user_id })
        .await?;
    if score.score < 50 {
        return Ok(true);
    }
    Ok(fraud.check_transaction(payment).await?.approved)
}

/// The payments team's test: `fraud.v1` mocked, the full check held until the test decides.
#[tokio::test(start_paused = true)]
async fn authorize_checks_risky_users_with_a_mocked_fraud_service() {
    let mock = MockService::of::<FraudService>();
    mock.on::<fraud::GetQuickScore>(|input| {
        let score = if input.user_id == "mallory" { 90 } else { 10 };
        Reply::value(GetQuickScoreOutput { score })
    });
    let checks = mock
        .on::<fraud::CheckTransaction>(|_| Reply::pending())
        .started::<fraud::CheckTransaction>();
    let env = TestEnv::new(mock.clone());
    let fraud = FraudClient::new(env.client(), env.endpoint());

    // A low score: approved without a check.
    assert!(authorize(&fraud, payment("tx-1", 50.0)).await.unwrap());
    assert!(mock.calls_of::<fraud::CheckTransaction>().is_empty());

    // A high score: the check decides.
    let mut risky = payment("tx-2", 5_000.0);
    risky.user_id = "mallory".into();
    let authorizing = tokio::spawn({
        let fraud = fraud.clone();
        async move { authorize(&fraud, risky).await }
    });
    let check = checks.next().await;
    assert_eq!(check.input().transaction_id, "tx-2");
    check.complete(CheckTransactionOutput {
        approved: false,
        risk_score: 95,
        reason: Some("known fraudster".into()),
    });
    assert!(!authorizing.await.unwrap().unwrap());

    let users: Vec<String> = mock
        .inputs::<fraud::GetQuickScore>()
        .into_iter()
        .map(|input| input.user_id)
        .collect();
    assert_eq!(users, ["ada", "mallory"]);
}

/// The README's "Testing" section shows the two tests above: their bodies must stay the same.
#[test]
fn the_readme_shows_these_tests() {
    let readme = include_str!("../../README.md");
    let source = include_str!("testing.rs");
    for name in [
        "fraud_desk_scores_checks_and_rejects",
        "authorize_checks_risky_users_with_a_mocked_fraud_service",
    ] {
        let start = source.find(&format!("async fn {name}() {{\n")).unwrap();
        let body_start = start + source[start..].find('\n').unwrap() + 1;
        let body_end = body_start + source[body_start..].find("\n}\n").unwrap() + 1;
        let body = &source[body_start..body_end];
        assert!(
            readme.contains(body),
            "README.md's Testing section no longer shows the body of `{name}`"
        );
    }
    let authorize = source.find("async fn authorize(").unwrap();
    let authorize_end = authorize + source[authorize..].find("\n}\n").unwrap() + 3;
    assert!(
        readme.contains(&source[authorize..authorize_end]),
        "README.md's Testing section no longer shows `authorize`"
    );
}
