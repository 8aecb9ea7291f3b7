//! A test kit for code on either side of a contract (feature `testing`).
//!
//! - [`TestEnv`] wires a [`Dispatcher`](crate::service::Dispatcher) and a
//!   [`Client`](crate::Client) in one process (optionally on a shared
//!   [`MemoryStore`](crate::store::MemoryStore)), to test a handler through the same path real
//!   calls take: decoding, the machinery (retries, timeouts, cancellation) and async completions.
//! - [`MockService`] stands in for another team's service in a caller's tests: each operation,
//!   named by its generated descriptor, is answered by a closure ([`Reply`]: a value, an error,
//!   or an async start whose outcome the test decides through a [`StartedOperation`]); every call
//!   it received is kept ([`MockCall`]) for the test to assert on.
//! - [`TestEnv::advance`] moves Tokio's paused clock, so retries, backoff and timeouts take no
//!   real time: run such tests with `#[tokio::test(start_paused = true)]`.
//!
//! A caller's test with a mock of the service it calls:
//!
//! ```
//! use nexus_runtime::testing::{MockService, Reply, TestEnv};
//! use nexus_runtime::{HandlerError, OperationContext, OperationResult, nexus_service};
//!
//! #[nexus_service(name = "scoring.v1")]
//! pub trait Scoring {
//!     async fn score(&self, ctx: OperationContext, user: String) -> OperationResult<u32>;
//! }
//!
//! // The code under test: a caller of `scoring.v1`.
//! async fn is_risky(scoring: &ScoringClient, user: &str) -> Result<bool, nexus_runtime::CallError> {
//!     Ok(scoring.score(user.to_owned()).await? > 50)
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let mock = MockService::of::<ScoringService>();
//! mock.on::<scoring::Score>(|user| match user.as_str() {
//!     "" => Reply::error(HandlerError::bad_request("empty user")),
//!     "mallory" => Reply::value(90),
//!     _ => Reply::value(10),
//! });
//! let env = TestEnv::new(mock.clone());
//! let scoring = ScoringClient::new(env.client(), env.endpoint());
//!
//! assert!(is_risky(&scoring, "mallory").await.unwrap());
//! assert!(!is_risky(&scoring, "ada").await.unwrap());
//! assert!(is_risky(&scoring, "").await.is_err());
//! assert_eq!(mock.inputs::<scoring::Score>(), ["mallory", "ada", ""]);
//! # }
//! ```

mod env;
mod mock;
mod reply;

pub use env::{TestEnv, TestEnvBuilder};
pub use mock::{MockCall, MockService};
pub use reply::{Reply, Started, StartedOperation};
