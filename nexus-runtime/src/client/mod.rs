//! The caller side: a [`Client`] routes calls to endpoints; generated stubs wrap a
//! [`ServiceClient`] and return [`Call`]s; a scheduled operation is an [`OperationHandle`], which a
//! background *driver* task runs through the [machinery](crate::machinery) (retries, breaker,
//! limits, timeouts, cancellation).

mod call;
mod driver;
mod endpoint;
mod handle;
mod info;
mod options;
mod pending;

pub use call::Call;
pub use endpoint::EndpointConfig;
pub use handle::OperationHandle;
pub use info::{CancelState, CancellationInfo, OperationInfo, OperationState};
pub use options::{CallOptions, CancellationType};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio::time::Instant;

use self::driver::{Channels, Driver, Record, Spec};
use self::endpoint::EndpointState;
use self::handle::Shared;
use self::pending::PendingTable;
use crate::codec;
use crate::completion::Completion;
use crate::error::{CallError, HandlerError};
use crate::machinery::{BreakerState, Deadlines, Jitter, Timeouts};
use crate::operation::{CallScope, Operation};
use crate::service::Service;
use crate::transport::Transport;

/// Calls operations on named endpoints. Cheap to clone; clones share endpoints, breakers, limits
/// and pending operations.
///
/// ```
/// use nexus_runtime::{Client, service::Dispatcher, transport::InProcessTransport};
///
/// let client = Client::builder()
///     .endpoint("fraud-detection", InProcessTransport::new(Dispatcher::builder().build()))
///     .build();
/// assert_eq!(client.endpoint_names(), ["fraud-detection"]);
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: HashMap<String, Arc<EndpointState>>,
    pending: Arc<PendingTable>,
    callback_url: Option<String>,
    jitter: Jitter,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoint_names())
            .field("callback_url", &self.inner.callback_url)
            .field("pending", &self.inner.pending.len())
            .finish()
    }
}

/// Builds a [`Client`].
#[derive(Default)]
pub struct ClientBuilder {
    endpoints: HashMap<String, EndpointConfig>,
    callback_url: Option<String>,
    jitter: Option<Jitter>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Routes calls for endpoint `name` through a transport, or through an [`EndpointConfig`]
    /// (several targets, retry policy, breaker, limits, timeouts).
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>, config: impl Into<EndpointConfig>) -> Self {
        self.endpoints.insert(name.into(), config.into());
        self
    }

    /// Routes calls for endpoint `name` through a shared transport, with the default settings.
    #[must_use]
    pub fn endpoint_arc(mut self, name: impl Into<String>, transport: Arc<dyn Transport>) -> Self {
        self.endpoints
            .insert(name.into(), EndpointConfig::with_targets(vec![transport]));
        self
    }

    /// The base URL of this process's callback receiver, for transports whose completions come
    /// back over the network. Each async operation gets `{base}/{callback id}`.
    #[must_use]
    pub fn callback_url(mut self, base: impl Into<String>) -> Self {
        self.callback_url = Some(base.into().trim_end_matches('/').to_owned());
        self
    }

    /// The random source of backoff jitter (default: seeded from the operating system). A seeded
    /// source ([`Jitter::seeded`]) makes retry schedules reproducible.
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Builds the client. It needs no runtime; operations are driven by tasks of the Tokio
    /// runtime they are scheduled from.
    pub fn build(self) -> Client {
        let endpoints = self
            .endpoints
            .into_iter()
            .map(|(name, config)| {
                let state = Arc::new(EndpointState::new(name.clone(), config));
                (name, state)
            })
            .collect();
        Client {
            inner: Arc::new(Inner {
                endpoints,
                pending: Arc::default(),
                callback_url: self.callback_url,
                jitter: self.jitter.unwrap_or_default(),
            }),
        }
    }
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The configured endpoint names, sorted.
    pub fn endpoint_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.endpoints.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// A client for service `S` on `endpoint`; generated stubs wrap one.
    pub fn service<S: Service>(&self, endpoint: impl Into<String>) -> ServiceClient {
        ServiceClient {
            client: self.clone(),
            endpoint: endpoint.into().into(),
            service: S::NAME,
        }
    }

    /// Number of operations this client is driving that may still receive a completion
    /// (scheduled or started, not ended, not abandoned).
    pub fn pending_operations(&self) -> usize {
        self.inner.pending.len()
    }

    /// The circuit breaker state of `endpoint` (of its first target); `None` for an unknown
    /// endpoint.
    pub fn breaker_state(&self, endpoint: &str) -> Option<BreakerState> {
        self.breaker_states(endpoint).into_iter().next()
    }

    /// The circuit breaker state of each target of `endpoint`, in order.
    pub fn breaker_states(&self, endpoint: &str) -> Vec<BreakerState> {
        self.inner
            .endpoints
            .get(endpoint)
            .map(|e| e.targets.breaker_states())
            .unwrap_or_default()
    }

    /// Delivers a completion received for callback id `callback_id` (the callback receiver calls
    /// this). Unknown or repeated completions are NOT_FOUND.
    pub fn deliver_completion(
        &self,
        callback_id: &str,
        completion: Completion,
    ) -> Result<(), HandlerError> {
        self.inner.pending.complete(callback_id, completion)
    }

    pub(crate) fn pending(&self) -> &PendingTable {
        &self.inner.pending
    }

    pub(crate) fn pending_table(&self) -> Arc<PendingTable> {
        self.inner.pending.clone()
    }

    pub(crate) fn jitter(&self) -> &Jitter {
        &self.inner.jitter
    }

    pub(crate) fn callback_base(&self) -> Option<&str> {
        self.inner.callback_url.as_deref()
    }

    fn endpoint_state(&self, endpoint: &str) -> Result<&Arc<EndpointState>, CallError> {
        self.inner.endpoints.get(endpoint).ok_or_else(|| {
            CallError::Invalid(format!(
                "unknown endpoint `{endpoint}`; configured endpoints: {}",
                self.endpoint_names().join(", ")
            ))
        })
    }

    /// Starts operation `Op` on `endpoint`; returns once it started or answered synchronously
    /// (see [`Call::start`]).
    pub async fn start<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        options: CallOptions,
    ) -> Result<OperationHandle<Op>, CallError> {
        let handle = self.schedule::<Op>(endpoint, input, options)?;
        handle.wait_started().await?;
        Ok(handle)
    }

    /// Schedules operation `Op` on `endpoint` and returns its handle at once (see
    /// [`Call::schedule`]). Must be called from inside a Tokio runtime, which drives it.
    pub fn schedule<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        options: CallOptions,
    ) -> Result<OperationHandle<Op>, CallError> {
        let runtime = current_runtime()?;
        let (commands_tx, commands) = driver::command_channel();
        let prepared = self.prepare::<Op>(endpoint, input, options, Some(commands))?;
        runtime.spawn(prepared.driver.run());
        Ok(OperationHandle::new(Shared {
            endpoint: endpoint.to_owned(),
            service: <Op::Service as Service>::NAME,
            operation: Op::NAME,
            request_id: prepared.request_id.unwrap_or_default(),
            record: prepared.record,
            commands: commands_tx,
            token: OnceLock::new(),
            start_links: OnceLock::new(),
        }))
    }

    /// Runs operation `Op` on `endpoint` to its result on the calling task: what awaiting a
    /// [`Call`] does. The same driver as [`schedule`](Self::schedule)'s runs inline, since nothing
    /// but this future observes the operation; dropping the future abandons the operation as
    /// dropping every handle does.
    pub(crate) async fn call<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        options: CallOptions,
    ) -> Result<Op::Output, CallError> {
        current_runtime()?;
        let prepared = self.prepare::<Op>(endpoint, input, options, None)?;
        drop(prepared.record);
        handle::decode_outcome::<Op>(prepared.driver.run_inline().await)
    }

    /// Checks and encodes a call, registers it for its completion, and builds its driver.
    fn prepare<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        mut options: CallOptions,
        commands: Option<driver::CommandReceiver>,
    ) -> Result<Prepared, CallError> {
        let state = self.endpoint_state(endpoint)?.clone();
        if state.target_count == 0 {
            return Err(CallError::Invalid(format!(
                "endpoint `{endpoint}` has no targets"
            )));
        }
        if state.targets.any_needs_callback_url() && self.inner.callback_url.is_none() {
            return Err(CallError::Invalid(format!(
                "endpoint `{endpoint}` needs a callback URL for async operations; \
                 configure one with ClientBuilder::callback_url"
            )));
        }
        let input = codec::encode(&input).map_err(|e| {
            CallError::Codec(format!("cannot encode the input of `{}`: {e}", Op::NAME))
        })?;
        let mut request_id = options
            .request_id
            .take()
            .unwrap_or_else(|| crate::id::new_v4().to_string());
        let scheduled = Instant::now();
        let scope = CallScope::current();
        let timeouts = merge_timeouts(state.timeouts, &options);
        let deadlines = Deadlines::new(
            &timeouts,
            scheduled,
            scope.as_ref().and_then(|s| s.deadline),
        );
        let (registration, completions) = self
            .inner
            .pending
            .register_operation(state.targets.any_needs_callback_url());
        let (record, record_rx) = watch::channel(Record::new(scheduled));
        let spec = Spec {
            service: <Op::Service as Service>::NAME,
            operation: Op::NAME,
            // A copy for the handle only when there will be one.
            request_id: match commands {
                Some(_) => request_id.clone(),
                None => std::mem::take(&mut request_id),
            },
            headers: options.headers,
            links: options.links,
            input,
            cancellation_type: options.cancellation_type,
            retry: options.retry_policy.unwrap_or_else(|| state.retry.clone()),
        };
        let driver = Driver::new(
            self.clone(),
            state,
            spec,
            deadlines,
            Channels {
                record,
                commands,
                completions,
                registration,
            },
            scope.map(|s| s.cancel),
        );
        Ok(Prepared {
            driver,
            record: record_rx,
            request_id: (!request_id.is_empty()).then_some(request_id),
        })
    }
}

/// A call ready to run: its driver, and what a handle needs to observe it.
struct Prepared {
    driver: Driver,
    record: watch::Receiver<Record>,
    /// For the handle (`None` when driven inline).
    request_id: Option<String>,
}

/// The runtime that drives operations.
fn current_runtime() -> Result<tokio::runtime::Handle, CallError> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        CallError::Invalid(
            "operations are driven by Tokio tasks: call from inside a Tokio runtime".into(),
        )
    })
}

fn merge_timeouts(endpoint: Timeouts, options: &CallOptions) -> Timeouts {
    Timeouts {
        schedule_to_close: options
            .schedule_to_close_timeout
            .or(endpoint.schedule_to_close),
        schedule_to_start: options
            .schedule_to_start_timeout
            .or(endpoint.schedule_to_start),
        start_to_close: options.start_to_close_timeout.or(endpoint.start_to_close),
        request: options.request_timeout.unwrap_or(endpoint.request),
    }
}

/// A [`Client`] bound to one service on one endpoint. Generated caller stubs wrap one.
#[derive(Clone, Debug)]
pub struct ServiceClient {
    client: Client,
    endpoint: Arc<str>,
    service: &'static str,
}

impl ServiceClient {
    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The endpoint name.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The service's wire name.
    pub fn service_name(&self) -> &'static str {
        self.service
    }

    /// A call of operation `Op` with `input`.
    pub fn call<Op: Operation>(&self, input: Op::Input) -> Call<Op> {
        Call::new(self.clone(), input)
    }
}
