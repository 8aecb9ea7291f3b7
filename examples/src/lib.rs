//! Shared pieces of the examples: the fraud team's implementation of the `fraud.v1` contract and
//! who may call it,
//! wrappers that let tests watch a handler from outside, a durable log of its executions for
//! crash tests, and the deterministic inputs of `payments` load mode.

pub mod admin_flags;
pub mod callers;
pub mod disk_full;
pub mod executions;
pub mod fraud_desk;
pub mod load;
pub mod logging;
pub mod observe;
pub mod store_flag;
pub mod tls_flags;

/// The README's Rust examples, compiled (and run, unless marked `no_run`) as this crate's
/// doctests: it depends on the runtime with every feature, the contract and the fraud desk.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
