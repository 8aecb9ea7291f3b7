//! `FraudDesk`: the fraud team's implementation of the `fraud.v1` contract.
//!
//! Behaviour (so anyone can check it from outside):
//! - `getQuickScore` is synchronous and deterministic in `userId`; an empty `userId` is BAD_REQUEST;
//! - `checkTransaction` is asynchronous: it completes after the check delay with
//!   `approved = amount < 10000`; a negative amount completes as a failed OperationError, and a
//!   canceled check completes as canceled. A check can be redone, so it is declared resumable:
//!   with a store, a check running when the process stopped is run again by the next process;
//! - `flagUser` is synchronous and returns no value.
//!
//! With an [`ExecutionLog`], every method run (not an answer replayed from the store) is
//! recorded durably before the method goes on. A check's start then also chooses its operation
//! token (a fresh UUID per execution) and writes it in its line, so the line says which
//! execution's answer the caller got: the one whose token the caller and the store hold.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use fraud_contract::{
    CheckTransactionInput, CheckTransactionOutput, FlagUserInput, Fraud, GetQuickScoreInput,
    GetQuickScoreOutput,
};
use nexus_runtime::operation::{AsyncOperation, OperationStart};
use nexus_runtime::{HandlerError, OperationContext, OperationError, OperationResult};

use crate::executions::{Execution, ExecutionLog};

/// Payments at or above this amount are declined.
pub const APPROVAL_LIMIT: f64 = 10_000.0;

/// Details attached to a failed check, readable by the caller with `OperationError::details`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRejected {
    /// The transaction.
    pub transaction_id: String,
    /// What was wrong with it.
    pub problem: String,
}

/// The fraud team's handler.
#[derive(Debug)]
pub struct FraudDesk {
    check_delay: Duration,
    flagged: Mutex<BTreeSet<String>>,
    executions: Option<ExecutionLog>,
}

impl FraudDesk {
    /// A desk whose checks take `check_delay`.
    pub fn new(check_delay: Duration) -> Self {
        Self {
            check_delay,
            flagged: Mutex::default(),
            executions: None,
        }
    }

    /// Records every execution of an operation method in `log`.
    #[must_use]
    pub fn with_execution_log(mut self, log: ExecutionLog) -> Self {
        self.executions = Some(log);
        self
    }

    /// Records this execution (answering with `token`, if it chose one), if there is a log. A
    /// write that fails is a retryable INTERNAL error: the execution did not happen as far as the
    /// caller knows, and its retry runs again.
    async fn executed(
        &self,
        ctx: &OperationContext,
        token: Option<&str>,
    ) -> Result<(), HandlerError> {
        let Some(log) = &self.executions else {
            return Ok(());
        };
        let execution =
            Execution::new(ctx.operation(), ctx.request_id(), ctx.resumed()).with_token(token);
        log.record(&execution)
            .await
            .map_err(|e| HandlerError::internal(format!("cannot write the execution log: {e}")))
    }

    /// The users flagged so far.
    pub fn flagged_users(&self) -> Vec<String> {
        self.flagged
            .lock()
            .map(|f| f.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The quick score of a user: a stable hash of the id, from 0 to 99.
pub fn quick_score(user_id: &str) -> u32 {
    // FNV-1a: stable across processes and platforms, unlike the std hasher.
    let hash = user_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % 100) as u32
}

/// The outcome of a check once its delay is over: `approved = amount < APPROVAL_LIMIT`, a risk
/// score from the amount and the user's quick score, and a failed OperationError (with
/// [`CheckRejected`] details) for a negative or non-finite amount.
pub fn verdict(input: &CheckTransactionInput) -> Result<CheckTransactionOutput, OperationError> {
    if input.amount < 0.0 || !input.amount.is_finite() {
        return Err(OperationError::failed(format!(
            "transaction {} has an invalid amount {}",
            input.transaction_id, input.amount
        ))
        .with_details(&CheckRejected {
            transaction_id: input.transaction_id.clone(),
            problem: "negative amount".into(),
        }));
    }
    let approved = input.amount < APPROVAL_LIMIT;
    let risk =
        (input.amount / APPROVAL_LIMIT * 50.0).min(50.0) as u32 + quick_score(&input.user_id) / 2;
    Ok(CheckTransactionOutput {
        approved,
        risk_score: risk.min(100),
        reason: (!approved).then(|| format!("amount is at or above the limit of {APPROVAL_LIMIT}")),
    })
}

impl Fraud for FraudDesk {
    async fn check_transaction(
        &self,
        ctx: OperationContext,
        input: CheckTransactionInput,
    ) -> OperationResult<CheckTransactionOutput> {
        // With a log, a start names its token, so its line identifies the execution; a resumed
        // check keeps the token the caller already holds.
        let token = (self.executions.is_some() && !ctx.resumed())
            .then(|| uuid::Uuid::new_v4().simple().to_string());
        self.executed(&ctx, token.as_deref()).await?;
        let delay = self.check_delay;
        // A check can be redone from scratch after a restart: resumable.
        let work = AsyncOperation::new(move |work| async move {
            tokio::select! {
                _ = work.cancelled() => {
                    return Err(OperationError::canceled(format!(
                        "check of transaction {} canceled",
                        input.transaction_id
                    )));
                }
                _ = tokio::time::sleep(delay) => {}
            }
            verdict(&input)
        })
        .resumable();
        Ok(OperationStart::Async(match token {
            Some(token) => work.with_token(token),
            None => work,
        }))
    }

    async fn get_quick_score(
        &self,
        ctx: OperationContext,
        input: GetQuickScoreInput,
    ) -> OperationResult<GetQuickScoreOutput> {
        self.executed(&ctx, None).await?;
        if input.user_id.is_empty() {
            return Err(HandlerError::bad_request("`userId` must not be empty").into());
        }
        Ok(GetQuickScoreOutput {
            score: quick_score(&input.user_id),
        }
        .into())
    }

    async fn flag_user(&self, ctx: OperationContext, input: FlagUserInput) -> OperationResult<()> {
        self.executed(&ctx, None).await?;
        if input.user_id.is_empty() {
            return Err(HandlerError::bad_request("`userId` must not be empty").into());
        }
        tracing::info!(user = %input.user_id, reason = %input.reason, "user flagged");
        if let Ok(mut flagged) = self.flagged.lock() {
            flagged.insert(input.user_id);
        }
        Ok(().into())
    }
}
