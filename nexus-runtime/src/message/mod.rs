//! The messages every side shares: the requests a caller sends ([`StartRequest`],
//! [`CancelRequest`]), the answer to a start ([`StartResponse`]), and how an async operation's
//! outcome travels back ([`Completion`](completion::Completion), to a
//! [`Callback`](completion::Callback)).
//!
//! A leaf: it imports only the error model, links and payloads, so the wire rules (`protocol`),
//! the transports, the dispatcher and the client all depend on it and on nothing of each other
//! for these types.

pub mod completion;
mod request;

pub use request::{CancelRequest, StartRequest, StartResponse};

/// Request headers: lower-case names, one value each (the `Content-*` and `Nexus-Callback-*`
/// headers are not included).
pub type Headers = std::collections::BTreeMap<String, String>;
