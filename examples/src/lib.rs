//! Shared pieces of the examples: the fraud team's implementation of the `fraud.v1` contract.

pub mod fraud_desk;
