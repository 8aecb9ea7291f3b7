//! Endpoints: where a client sends an endpoint's calls, and the machinery's settings for them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::machinery::{
    Admitted, AttemptCall, AttemptError, AttemptRequest, AttemptResponse, AttemptStack,
    BreakerConfig, Limits, RetryPolicy, Targets, Timeouts,
};
use crate::transport::Transport;

/// How a client reaches one endpoint: its target transports and the machinery's settings.
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::{Client, client::EndpointConfig, service::Dispatcher};
/// use nexus_runtime::machinery::{BreakerConfig, Limits, RetryPolicy};
/// use nexus_runtime::transport::InProcessTransport;
///
/// let transport = InProcessTransport::new(Dispatcher::builder().build());
/// let client = Client::builder()
///     .endpoint(
///         "fraud-detection",
///         EndpointConfig::new(transport)
///             .retry(RetryPolicy::default().maximum_interval(Duration::from_secs(60)))
///             .breaker(BreakerConfig::default().open_duration(Duration::from_secs(30)))
///             .limits(Limits::default().max_concurrency(10).queue_bound(100))
///             .request_timeout(Duration::from_secs(5))
///             .schedule_to_close_timeout(Duration::from_secs(600)),
///     )
///     .build();
/// assert_eq!(client.endpoint_names(), ["fraud-detection"]);
/// ```
#[derive(Clone)]
pub struct EndpointConfig {
    pub(crate) targets: Vec<Arc<dyn Transport>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: BreakerConfig,
    pub(crate) limits: Limits,
    pub(crate) timeouts: Timeouts,
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("targets", &self.targets.len())
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("limits", &self.limits)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl<T: Transport> From<T> for EndpointConfig {
    fn from(transport: T) -> Self {
        Self::new(transport)
    }
}

impl From<Arc<dyn Transport>> for EndpointConfig {
    fn from(transport: Arc<dyn Transport>) -> Self {
        Self::with_targets(vec![transport])
    }
}

impl EndpointConfig {
    /// One target, with the default settings.
    pub fn new(transport: impl Transport) -> Self {
        Self::with_targets(vec![Arc::new(transport)])
    }

    /// Several targets serving the same services, used in round robin; a target whose breaker is
    /// open is skipped while another one can take the attempt.
    pub fn with_targets(targets: Vec<Arc<dyn Transport>>) -> Self {
        Self {
            targets,
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// Sets the retry policy of start and cancel requests.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the circuit breaker of each target.
    #[must_use]
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Sets the concurrency limit, rate limit and queue bound.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets all timeouts at once.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Sets the per-attempt timeout (default 10 s), sent as `Request-Timeout`.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// Sets the default schedule-to-close timeout of operations on this endpoint.
    #[must_use]
    pub fn schedule_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.schedule_to_close = Some(timeout);
        self
    }

    /// Sets the default schedule-to-start timeout.
    #[must_use]
    pub fn schedule_to_start_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.schedule_to_start = Some(timeout);
        self
    }

    /// Sets the default start-to-close timeout.
    #[must_use]
    pub fn start_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.start_to_close = Some(timeout);
        self
    }
}

/// An endpoint at run time: its targets with their breakers, and its limits stack.
pub(crate) struct EndpointState {
    /// Shared with the keys of its operations.
    pub name: Arc<str>,
    pub targets: Targets,
    pub stack: AttemptStack,
    /// Shared with the operations that take the endpoint's policy.
    pub retry: Arc<RetryPolicy>,
    pub timeouts: Timeouts,
    pub target_count: usize,
}

impl fmt::Debug for EndpointState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointState")
            .field("name", &self.name)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl EndpointState {
    pub fn new(name: String, config: EndpointConfig) -> Self {
        let stack = crate::machinery::stack(&config.limits, &name);
        Self {
            target_count: config.targets.len(),
            targets: Targets::new(config.targets, &config.breaker, &name),
            stack,
            retry: Arc::new(config.retry),
            timeouts: config.timeouts,
            name: name.into(),
        }
    }

    /// Sends one admitted attempt through the limits and reports its outcome to the target's
    /// breaker.
    pub fn attempt(
        &self,
        admitted: Admitted,
        call: AttemptCall,
        timeout: Duration,
        cap: Option<Instant>,
        operation_deadline: Option<Instant>,
    ) -> impl Future<Output = Result<AttemptResponse, AttemptError>> + Send + 'static {
        let stack = self.stack.clone();
        let metered = crate::observe::metrics::Outgoing::start(&self.name, &call);
        async move {
            let Admitted {
                transport, permit, ..
            } = admitted;
            let request = AttemptRequest {
                transport,
                call,
                timeout,
                cap,
                operation_deadline,
            };
            let result = stack.oneshot(request).await;
            match &result {
                Ok(_) => permit.success(),
                Err(AttemptError::Call(e)) if e.is_retryable() => permit.failure(),
                Err(AttemptError::Call(_)) => permit.success(),
                Err(AttemptError::Overloaded(_)) => drop(permit),
            }
            metered.finish(&result);
            result
        }
    }
}
