//! Shared fixtures of the benchmarks: the same work done through nexus-rs and through a baseline.

use fraud_contract::{GetQuickScoreInput, GetQuickScoreOutput};
use nexus_examples::fraud_desk::quick_score;

/// The baseline of the in-process benchmark: what a direct call costs when it does the same
/// work as a Nexus call (encode the input to JSON, decode it, run the handler logic, encode the
/// output, decode it), without the stub, dispatcher or transport.
pub fn direct_quick_score(input: &GetQuickScoreInput) -> GetQuickScoreOutput {
    let wire_in = serde_json::to_vec(input).expect("input encodes");
    let decoded: GetQuickScoreInput = serde_json::from_slice(&wire_in).expect("input decodes");
    let output = GetQuickScoreOutput {
        score: quick_score(&decoded.user_id),
    };
    let wire_out = serde_json::to_vec(&output).expect("output encodes");
    serde_json::from_slice(&wire_out).expect("output decodes")
}
