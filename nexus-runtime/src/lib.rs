//! # nexus-runtime
//!
//! Typed, durable service contracts between teams, in the model of
//! [Temporal Nexus](https://docs.temporal.io/nexus), speaking Nexus RPC over HTTP.
//!
//! A team publishes a **contract**: a trait annotated with [`nexus_service`]. From it the macro
//! generates a typed caller stub (`<Trait>Client`), a dispatch table (`<Trait>Service::handler`),
//! operation descriptors (`<trait_snake_case>::<Operation>`) and the JSON definition of the service.
//!
//! ```
//! use nexus_runtime::{nexus_service, OperationContext, OperationResult, HandlerError};
//! use serde::{Deserialize, Serialize};
//! use schemars::JsonSchema;
//!
//! /// A score for a user.
//! #[derive(Serialize, Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! pub struct Score { pub score: u32 }
//!
//! /// Scores users.
//! #[nexus_service(name = "scoring.v1")]
//! pub trait Scoring {
//!     /// The quick score of a user.
//!     async fn quick_score(&self, ctx: OperationContext, user_id: String) -> OperationResult<Score>;
//! }
//!
//! struct MyScoring;
//! impl Scoring for MyScoring {
//!     async fn quick_score(&self, _ctx: OperationContext, user_id: String) -> OperationResult<Score> {
//!         if user_id.is_empty() {
//!             return Err(HandlerError::bad_request("`userId` must not be empty").into());
//!         }
//!         Ok(Score { score: user_id.len() as u32 }.into())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), nexus_runtime::CallError> {
//! use nexus_runtime::{Client, service::Dispatcher, transport::InProcessTransport};
//! let dispatcher = Dispatcher::builder().service(ScoringService::handler(MyScoring)).build();
//! let client = Client::builder().endpoint("scoring", InProcessTransport::new(dispatcher)).build();
//! let scoring = ScoringClient::new(client, "scoring");
//! assert_eq!(scoring.quick_score("ada".into()).await?.score, 3);
//! # Ok(()) }
//! ```
//!
//! ## Over HTTP
//!
//! With the `http` feature, `server::HandlerServer` serves a dispatcher as Nexus RPC over HTTP,
//! `transport::HttpTransport` calls one, and `server::CallbackReceiver` receives the completions
//! of async operations. The wire rules themselves live in [`protocol`], which is
//! always compiled.
//!
//! ## Across teams
//!
//! [`security`] names callers and decides what they may do: with the `auth` feature, handler
//! servers authenticate callers by mTLS client certificate or bearer token (JWTs with `jwt`);
//! every dispatcher checks its allowlists, scopes request ids and cancel rights by caller, and
//! caps each caller's running operations.

#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets generated code say `::nexus_runtime` inside this crate's own tests and doctests.
#[allow(unused_extern_crates)]
extern crate self as nexus_runtime;

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
pub mod client;
pub mod clock;
pub mod codec;
pub use message::completion;
pub use operation::definition;
pub mod error;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod id;
mod lease;
pub mod link;
pub mod machinery;
pub mod message;
pub mod observe;
pub mod operation;
pub mod protocol;
#[cfg(feature = "registry")]
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub mod registry;
pub mod security;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod server;
pub mod service;
mod state;
pub mod store;
#[cfg(feature = "temporal")]
#[cfg_attr(docsrs, doc(cfg(feature = "temporal")))]
pub mod temporal;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod transport;

#[doc(hidden)]
pub mod __private;

pub use client::{
    Call, CallOptions, CancellationType, Client, EndpointConfig, OperationHandle, ServiceClient,
};
pub use error::{CallError, Failure, HandlerError, OperationError, StartError};
pub use link::Link;
/// Re-exported from `nexus-macros`: depend on this crate only.
///
/// The definition it generates, as a caller team or a Temporal worker reads it:
///
/// ```
/// use nexus_runtime::{OperationContext, OperationResult, Service, nexus_service};
///
/// /// Sends greetings.
/// #[nexus_service(name = "greeter.v1")]
/// pub trait Greeter {
///     /// Greets someone by name.
///     #[operation(name = "say-hello")]
///     async fn hello(&self, ctx: OperationContext, name: String) -> OperationResult<String>;
/// }
///
/// let definition = serde_json::to_value(GreeterService::definition()).unwrap();
/// let operation = &definition["services"]["greeter.v1"]["operations"]["say-hello"];
/// assert_eq!(operation["description"], "Greets someone by name.");
/// assert_eq!(operation["input"]["type"], "string");
/// ```
pub use nexus_macros::nexus_service;
pub use operation::Service;
pub use operation::{
    AsyncContext, Operation, OperationContext, OperationResult, OperationStart, Payload,
};
