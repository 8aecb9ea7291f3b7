//! The machinery between a caller and its transport, on scripted in-memory transports under
//! paused time: retries, the circuit breaker, limits, timeouts, inline starts, cancellation (also
//! through a chain of dispatchers).

#[path = "../support/mod.rs"]
mod support;

pub mod breaker;
pub mod cancel;
pub mod cancel_chain;
pub mod inline;
pub mod limits;
pub mod request_scope;
pub mod retry;
pub mod start;
pub mod timeouts;
