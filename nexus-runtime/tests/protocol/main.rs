//! The wire protocol: the rules of the Nexus RPC specification mirrored from the Go SDK's tests
//! (`conformance`), property tests of every parser that reads the network (`props`), and real
//! traffic of a Temporal server replayed (`temporal_captures`, feature `http`).

#[path = "../support/mod.rs"]
mod support;

pub mod conformance;
pub mod props;
pub mod temporal_captures;
