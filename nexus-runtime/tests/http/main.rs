//! Nexus RPC over real loopback HTTP (feature `http`): starting, canceling and completing
//! operations, the HTTP transport, the handler's definitions, server limits, mounting the
//! servers in an application's router, and faults (resets, timeouts, 503 bursts).

#[path = "../support/mod.rs"]
mod support;

pub mod cancel;
pub mod client;
pub mod completion;
pub mod definitions;
pub mod faults;
pub mod limits;
pub mod mount;
pub mod start;
