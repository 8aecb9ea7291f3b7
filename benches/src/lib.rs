//! Benchmarks of nexus-rs, each measured as a ratio against a baseline doing the same work in the
//! same run (see `BENCHMARKS.md` at the repository root for the tables and the commands).
//!
//! - [`inprocess`]: a sync operation through the generated stub and the dispatch table, against a
//!   direct call doing the same JSON encode and decode;
//! - [`servers`]: the HTTP servers compared (nexus-rs's `HandlerServer`, a bare axum endpoint) and
//!   the async handler of the round-trip benchmark;
//! - [`load`]: the load generator (a raw HTTP/1 client with one keep-alive connection per worker,
//!   reqwest, or the nexus-rs client);
//! - [`http`], [`round_trip`], [`temporal`], [`quick`]: the benchmarks the `nexus-bench` binary runs.

pub mod http;
pub mod inprocess;
pub mod lease_renewal;
pub mod load;
pub mod proc;
pub mod quick;
pub mod round_trip;
pub mod servers;
pub mod stats;
pub mod temporal;

use fraud_contract::{GetQuickScoreInput, GetQuickScoreOutput};
use nexus_examples::fraud_desk::quick_score;

/// The same service as a plain Rust trait, without nexus-rs: the baseline's callee.
pub trait DirectFraud {
    /// `getQuickScore`, as `FraudDesk` implements it.
    fn get_quick_score(&self, input: GetQuickScoreInput) -> Result<GetQuickScoreOutput, String>;
}

/// The plain implementation: the same checks and score as `FraudDesk::get_quick_score`.
#[derive(Debug, Default)]
pub struct DirectDesk;

impl DirectFraud for DirectDesk {
    fn get_quick_score(&self, input: GetQuickScoreInput) -> Result<GetQuickScoreOutput, String> {
        if input.user_id.is_empty() {
            return Err("`userId` must not be empty".into());
        }
        Ok(GetQuickScoreOutput {
            score: quick_score(&input.user_id),
        })
    }
}

/// The baseline of the in-process benchmark: a direct trait method call (through `&dyn`, as a
/// dispatch table would) doing the same JSON work as a Nexus call: encode the input, decode it,
/// call the method, encode the output, decode it. No stub, client, dispatcher or transport.
pub fn direct_quick_score(
    service: &dyn DirectFraud,
    input: &GetQuickScoreInput,
) -> GetQuickScoreOutput {
    let wire_in = serde_json::to_vec(input).expect("input encodes");
    let decoded: GetQuickScoreInput = serde_json::from_slice(&wire_in).expect("input decodes");
    let output = service.get_quick_score(decoded).expect("valid input");
    let wire_out = serde_json::to_vec(&output).expect("output encodes");
    serde_json::from_slice(&wire_out).expect("output decodes")
}

/// The input every sync benchmark sends.
pub fn bench_input() -> GetQuickScoreInput {
    GetQuickScoreInput {
        user_id: "user-ada".into(),
    }
}
