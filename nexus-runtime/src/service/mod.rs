//! The handler side: services as object-safe handlers, and the dispatcher that runs them.
//!
//! `#[nexus_service]` implements [`Service`] for a generated descriptor type and
//! [`ServiceHandler`] for an adapter around the team's implementation of the contract trait. A
//! [`Dispatcher`] hosts any number of service handlers, and every transport (in-process, HTTP)
//! goes through it.
//!
//! - `dispatcher`: the `Dispatcher`, its whole inherent impl (routing of start and cancel
//!   requests, with the caller's principal checked against the access policy); its methods
//!   delegate to the concern modules, which hold their logic as free functions;
//! - `builder`: the `DispatcherBuilder`; `quota`: per-principal caps on running async
//!   operations; `invoke`: one run of an operation method (and the invocation a start request
//!   gives it); `work` and `running`: async work and the table of running operations; `names`:
//!   the hosted operations' names, shared by the running operations;
//! - `durable`: what a dispatcher with a store adds (deduplication by request id, operation
//!   records and leases, the completion outbox, resume-or-fail at start-up).

mod builder;
mod dispatcher;
mod durable;
mod handler;
mod invoke;
mod names;
mod quota;
mod running;
mod work;

pub use builder::DispatcherBuilder;
pub use dispatcher::Dispatcher;
pub use durable::{DurabilityOptions, OutboxOptions};
pub use handler::{RawStart, ServiceHandler, StartFuture, typed_start};
#[doc(hidden)]
pub use handler::{decode_input, encode_output};
pub use quota::Quota;

#[doc(no_inline)]
pub use crate::operation::Service;
