//! # `fraud.v1`: the fraud team's service contract
//!
//! This crate is everything a caller of the fraud team depends on: the [`Fraud`] trait (the
//! contract), its input and output types, and what `#[nexus_service]` generates from it:
//!
//! - [`FraudClient`]: the typed caller stub;
//! - [`FraudService`]: the service descriptor, with [`FraudService::handler`] for the fraud team's
//!   implementation and the JSON definition (committed as `fraud.v1.nexusrpc.json`);
//! - [`fraud`]: one descriptor type per operation.
//!
//! Wire names are camelCase: the service is `fraud.v1`, the operations `checkTransaction`,
//! `getQuickScore` and `flagUser`.

use nexus_runtime::{OperationContext, OperationResult, nexus_service};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A payment to check before it is authorized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckTransactionInput {
    /// The payment's identifier, unique per payment.
    pub transaction_id: String,
    /// The amount in the account's currency; must not be negative.
    pub amount: f64,
    /// The paying user.
    pub user_id: String,
}

/// The verdict on a payment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckTransactionOutput {
    /// Whether the payment may proceed.
    pub approved: bool,
    /// Estimated risk, from 0 (none) to 100 (certain fraud).
    pub risk_score: u32,
    /// Why the payment was declined, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Whose quick score to compute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetQuickScoreInput {
    /// The user; must not be empty.
    pub user_id: String,
}

/// A user's quick risk score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetQuickScoreOutput {
    /// Risk from 0 (none) to 100 (certain fraud).
    pub score: u32,
}

/// A user to flag for manual review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagUserInput {
    /// The user to flag.
    pub user_id: String,
    /// Why the user is flagged.
    pub reason: String,
}

/// Fraud detection for payments.
///
/// Owned by the fraud team. Callers get verdicts on transactions, quick risk scores, and can flag
/// users for review.
#[nexus_service(name = "fraud.v1")]
pub trait Fraud {
    /// Checks a transaction thoroughly. This is long work: the handler answers asynchronously and
    /// completes the operation when the verdict is ready.
    async fn check_transaction(
        &self,
        ctx: OperationContext,
        input: CheckTransactionInput,
    ) -> OperationResult<CheckTransactionOutput>;

    /// Returns a user's quick risk score, synchronously.
    async fn get_quick_score(
        &self,
        ctx: OperationContext,
        input: GetQuickScoreInput,
    ) -> OperationResult<GetQuickScoreOutput>;

    /// Flags a user for manual review. Returns no value.
    async fn flag_user(&self, ctx: OperationContext, input: FlagUserInput) -> OperationResult<()>;
}
