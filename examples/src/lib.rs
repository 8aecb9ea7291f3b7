//! Shared pieces of the examples: the fraud team's implementation of the `fraud.v1` contract,
//! wrappers that let tests watch a handler from outside, a durable log of its executions for
//! crash tests, and the deterministic inputs of `payments` load mode.

pub mod executions;
pub mod fraud_desk;
pub mod load;
pub mod observe;
pub mod tls_flags;
