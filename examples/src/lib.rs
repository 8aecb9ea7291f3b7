//! Shared pieces of the examples: the fraud team's implementation of the `fraud.v1` contract, and
//! wrappers that let tests watch a handler from outside, and a durable log of its executions for
//! crash tests.

pub mod executions;
pub mod fraud_desk;
pub mod observe;
