//! The machinery between a caller and a transport: retries, circuit breaking, limits, deadlines
//! and load balancing. The client's operation driver uses it for every attempt, whatever the
//! transport (in-process or HTTP).
//!
//! One attempt goes through:
//! ```text
//! breakers (round robin over the endpoint's targets, skipping open ones; wait while all are open)
//!   -> limits (tower stack: queue bound -> concurrency -> rate)
//!   -> attempt (request deadline = now + request timeout, capped by the operation's deadline)
//!   -> transport
//! ```
//! and a retryable failure waits a jittered exponential backoff before the next attempt.
//!
//! Every delay before a retry, here and elsewhere in the crate, is computed by one engine,
//! [`Backoff`]; the attempts of a cancel request and of an in-memory completion delivery are
//! retried by one loop, and every retry (starts and the outbox's too) is decided by one step of
//! a retry schedule (`retry_loop.rs`).
//!
//! The configuration types are public: [`RetryPolicy`], [`BreakerConfig`], [`Limits`],
//! [`Timeouts`] and [`Jitter`]; an [`EndpointConfig`](crate::client::EndpointConfig) carries them
//! per endpoint and [`CallOptions`](crate::CallOptions) overrides the retry policy and timeouts per
//! call.

mod attempt;
mod backoff;
mod balance;
mod breaker;
mod deadline;
mod jitter;
mod limits;
mod rate;
mod retry;
mod retry_loop;

pub use backoff::Backoff;
pub use breaker::{BREAKER_OPEN_REASON, BreakerConfig, BreakerState};
pub use deadline::{DEFAULT_REQUEST_TIMEOUT, Timeouts};
pub use jitter::Jitter;
pub use limits::Limits;
pub use retry::RetryPolicy;

pub(crate) use attempt::{AttemptCall, AttemptError, AttemptRequest, AttemptResponse};
pub(crate) use backoff::store_retry;
pub(crate) use balance::{Admission, Admitted, Targets};
pub(crate) use deadline::Deadlines;
pub(crate) use limits::{AttemptStack, stack};
pub(crate) use retry_loop::{Backing, RetrySchedule, Try, retry};
