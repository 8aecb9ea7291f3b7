//! The caller side: a [`Client`] routes calls to endpoints; generated stubs wrap a
//! [`ServiceClient`] and return [`Call`]s; a scheduled operation is an [`OperationHandle`], which a
//! background *driver* task runs through the [machinery](crate::machinery) (retries, breaker,
//! limits, timeouts, cancellation). Every operation is recorded in a
//! [`CallerStore`] before its first attempt and at every transition,
//! so it survives a restart and can be taken over by another replica (see [`durable`]).

mod attach;
mod builder;
mod call;
mod caller_link;
mod driver;
pub mod durable;
mod endpoint;
mod handle;
mod info;
mod key;
mod listing;
mod options;
mod pending;
mod queue;
mod record_cell;
#[cfg(feature = "registry")]
mod registered;
mod untyped;

pub use attach::AttachError;
pub use builder::ClientBuilder;
pub use call::Call;
pub use caller_link::CALLER_LINK_TYPE;
pub use durable::ReplicaConfig;
pub use endpoint::EndpointConfig;
pub use handle::OperationHandle;
pub use info::{CancelState, CancellationInfo, OperationInfo, OperationState};
pub use listing::{OperationFilter, OperationPage, OperationSummary};
pub use options::{CallOptions, CancellationType};
pub use untyped::{Untyped, UntypedService};

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::caller_link::{CallerLinker, CallerLinks};
use self::driver::{Record, Spec, StartBody};
use self::durable::Durability;
use self::durable::options::StoredOptions;
use self::durable::task::{self, Begin, NewOperation};
use self::endpoint::EndpointState;
use self::key::OperationKey;
use self::pending::{Attached, Inbox, Local, Registry};
use crate::clock;
use crate::codec::payload::CodecSlot;
use crate::codec::{self, Content, PayloadCodec};
use crate::completion::Completion;
use crate::error::{CallError, HandlerError};
use crate::machinery::{BreakerState, Deadlines, Jitter, Timeouts};
use crate::operation::{CallScope, Operation};
use crate::security::CallbackSecret;
use crate::service::Service;
use crate::store::{CallerRecord, CallerStore, Lease, OperationDeadlines, RequestKey};

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
    callback_url: Option<String>,
    /// The link each start carries back to its operation.
    caller_link: CallerLinker,
    jitter: Jitter,
    durability: Durability,
    /// Transforms inputs before they are recorded and sent, and results when they are read.
    codec: CodecSlot,
    registry: Arc<Registry>,
    inbox: Arc<Inbox>,
    /// The first recovery pass, once done: how many operations it resumed.
    recovered: tokio::sync::OnceCell<usize>,
    caretaker_started: AtomicBool,
    stop: CancellationToken,
    shut_down: AtomicBool,
    /// Endpoints resolved through an endpoint registry, after the fixed ones.
    #[cfg(feature = "registry")]
    registered: Option<registered::Registered>,
}

impl Inner {
    fn new(
        endpoints: HashMap<String, Arc<EndpointState>>,
        callback_url: Option<String>,
        caller_links: CallerLinks,
        jitter: Jitter,
        durability: Durability,
        codec: CodecSlot,
    ) -> Self {
        let registry = Arc::new(Registry::new(
            durability.persistent,
            durability.keeps_nothing(),
        ));
        let inbox = Arc::new(Inbox {
            store: durability.store.clone(),
            registry: registry.clone(),
            accept_legacy_unsigned: durability.accept_legacy_unsigned,
        });
        Self {
            endpoints,
            caller_link: CallerLinker::new(caller_links, callback_url.as_deref()),
            callback_url,
            jitter,
            durability,
            codec,
            registry,
            inbox,
            recovered: tokio::sync::OnceCell::new(),
            caretaker_started: AtomicBool::new(false),
            stop: CancellationToken::new(),
            shut_down: AtomicBool::new(false),
            #[cfg(feature = "registry")]
            registered: None,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoint_names())
            .field("callback_url", &self.inner.callback_url)
            .field("durability", &self.inner.durability)
            .field("pending", &self.inner.registry.len())
            .finish()
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

    /// Number of operations this process runs: scheduled or started, not ended, not abandoned
    /// (and, with replicas, those it follows while another replica drives them).
    pub fn pending_operations(&self) -> usize {
        self.inner.registry.len()
    }

    /// The store operations are recorded in: a private memory store when none was configured,
    /// which stays empty unless a [retention](ClientBuilder::retention) was configured (a client
    /// that keeps nothing once an operation ends keeps its running operations in memory only).
    pub fn store(&self) -> &Arc<dyn CallerStore> {
        &self.inner.durability.store
    }

    /// This process's id as the owner of leases.
    pub fn owner_id(&self) -> &str {
        &self.inner.durability.owner
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

    /// Records a completion received for callback id `callback_id` (an operation id) with the
    /// callback secret `secret` (the [`CALLBACK_SECRET_PARAM`](crate::security::CALLBACK_SECRET_PARAM)
    /// of the callback URL's query) in the store, then hands it to the operation's driver if it runs in this process. The
    /// callback receiver calls this and answers 200 only for `Ok`: the completion is then
    /// durable.
    ///
    /// The secret is checked first, in constant time, against the one the operation's callback
    /// URL was given: a missing or wrong secret is refused exactly as an unknown operation is
    /// (NOT_FOUND, same message), so a forger learns nothing, not even whether the operation
    /// exists, and nothing is recorded.
    ///
    /// The same completion received again (the operation ended with it) is acknowledged: its
    /// sender missed the first acknowledgement. Errors: NOT_FOUND for an unknown id, a missing
    /// or wrong secret, or an operation that already finished otherwise (another outcome, or it
    /// timed out or was canceled first), BAD_REQUEST for a token other than the start response
    /// gave, UNAVAILABLE (retryable) when the store fails.
    pub async fn deliver_completion(
        &self,
        callback_id: &str,
        secret: Option<&str>,
        completion: Completion,
    ) -> Result<(), HandlerError> {
        self.inner
            .inbox
            .deliver(callback_id, secret, completion)
            .await
    }

    pub(crate) fn durability(&self) -> &Durability {
        &self.inner.durability
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    pub(crate) fn inbox(&self) -> Arc<Inbox> {
        self.inner.inbox.clone()
    }

    pub(crate) fn jitter(&self) -> &Jitter {
        &self.inner.jitter
    }

    /// The payload codec, if one was configured.
    pub(crate) fn payload_codec(&self) -> Option<&Arc<dyn PayloadCodec>> {
        self.inner.codec.get()
    }

    pub(crate) fn callback_base(&self) -> Option<&str> {
        self.inner.callback_url.as_deref()
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::Acquire)
    }

    /// The endpoint named `endpoint`: a fixed one, else (feature `registry`) one of the
    /// client's endpoint registry that its caller may use.
    pub(crate) fn endpoint_named(&self, endpoint: &str) -> Option<Arc<EndpointState>> {
        if let Some(state) = self.inner.endpoints.get(endpoint) {
            return Some(state.clone());
        }
        #[cfg(feature = "registry")]
        if let Some(registered) = &self.inner.registered {
            return registered.resolve(endpoint).ok();
        }
        None
    }

    fn endpoint_state(&self, endpoint: &str) -> Result<Arc<EndpointState>, CallError> {
        if let Some(state) = self.inner.endpoints.get(endpoint) {
            return Ok(state.clone());
        }
        #[cfg(feature = "registry")]
        if let Some(registered) = &self.inner.registered {
            return registered.resolve(endpoint);
        }
        self.endpoint_named(endpoint).ok_or_else(|| {
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
    /// [`Call::schedule`]). Must be called from inside a Tokio runtime, which drives it. Its task
    /// records it in the store before the first attempt; a request id already recorded for this
    /// endpoint and operation is not started again: the handle follows the recorded operation.
    pub fn schedule<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        options: CallOptions,
    ) -> Result<OperationHandle<Op>, CallError> {
        let runtime = current_runtime()?;
        match self.prepare::<Op>(endpoint, input, options)? {
            Prepared::New(local, attached, new) => {
                self.spawn_task(&runtime, local, Begin::New(new));
                Ok(OperationHandle::from_attached(
                    attached,
                    self.payload_codec(),
                ))
            }
            Prepared::Running(attached) => Ok(OperationHandle::from_attached(
                attached,
                self.payload_codec(),
            )),
        }
    }

    /// Runs operation `Op` on `endpoint` to its result: what awaiting a [`Call`] does.
    ///
    /// For a client that keeps nothing once an operation ends (built without a store or a
    /// retention), the operation's driver runs inline on the calling task: this future is its
    /// only observer, so there is no task to spawn and no handle to wake, and dropping the future
    /// abandons the operation as dropping every handle does. With a configured store the
    /// operation must outlive this future, so it gets a task of its own as with
    /// [`schedule`](Self::schedule).
    pub(crate) async fn call<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        options: CallOptions,
    ) -> Result<Op::Output, CallError> {
        if !self.inner.durability.runs_inline() {
            return self
                .schedule::<Op>(endpoint, input, options)?
                .result()
                .await;
        }
        current_runtime()?;
        match self.prepare::<Op>(endpoint, input, options)? {
            Prepared::New(local, attached, new) => {
                let outcome = task::run_inline(self, local, new, attached).await;
                handle::decode_outcome::<Op>(outcome, self.payload_codec())
            }
            Prepared::Running(attached) => {
                OperationHandle::<Op>::from_attached(attached, self.payload_codec())
                    .result()
                    .await
            }
        }
    }

    /// Checks and encodes a call, and registers its operation (not yet recorded in the store:
    /// its task does that before the first attempt).
    fn prepare<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        options: CallOptions,
    ) -> Result<Prepared, CallError> {
        let cannot_encode =
            |e| CallError::Codec(format!("cannot encode the input of `{}`: {e}", Op::NAME));
        let input = codec::encode(&input).map_err(cannot_encode)?;
        self.prepare_named(
            endpoint,
            Cow::Borrowed(<Op::Service as Service>::NAME),
            Cow::Borrowed(Op::NAME),
            input,
            options,
        )
    }

    /// [`prepare`](Self::prepare) for an operation named at run time, with its input encoded.
    fn prepare_named(
        &self,
        endpoint: &str,
        service: Cow<'static, str>,
        operation: Cow<'static, str>,
        mut input: Content,
        options: CallOptions,
    ) -> Result<Prepared, CallError> {
        if self.is_shut_down() {
            return Err(CallError::Invalid("the client was shut down".into()));
        }
        let state = self.endpoint_state(endpoint)?;
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
        let cannot_encode =
            |e| CallError::Codec(format!("cannot encode the input of `{operation}`: {e}"));
        // The one place inputs go through the payload codec: what is recorded is what is sent.
        if let Some(payload_codec) = self.payload_codec() {
            input = payload_codec.encode(input).map_err(cannot_encode)?;
        }
        let request_id = options
            .request_id
            .clone()
            .unwrap_or_else(crate::id::new_request_id);
        let scheduled = Instant::now();
        let scheduled_at = clock::now();
        let scope = CallScope::current();
        let timeouts = merge_timeouts(state.timeouts, &options);
        let deadlines = Deadlines::new(
            &timeouts,
            scheduled,
            scope.as_ref().and_then(|s| s.deadline),
        );
        let id = crate::id::new_v7();
        let mut options = options;
        self.inner.caller_link.add(id, &mut options.links);
        let retry = options
            .retry_policy
            .map_or_else(|| state.retry.clone(), Arc::new);
        let durability = &self.inner.durability;
        // The options are kept for whoever resumes the operation from its record. A client that
        // keeps nothing once an operation ends never does (its records live only while their
        // task runs, and a handle attaches to the task): building, copying and dropping their
        // JSON tree was a third of an in-process call.
        let stored_options = if durability.keeps_nothing() {
            serde_json::Value::Null
        } else {
            StoredOptions::new(
                &options.headers,
                &options.links,
                options.cancellation_type,
                &retry,
                &timeouts,
            )
            .to_json()
        };
        let span = crate::observe::spans::call(endpoint, &service, &operation, &request_id);
        let key = Arc::new(OperationKey {
            endpoint: state.name.clone(),
            service,
            operation,
            request_id: request_id.into(),
        });
        // Every recorded operation gets a secret (a record without one is then one made before
        // secrets existed); a client that keeps nothing needs one only for callbacks over the
        // network.
        let callback_secret = (!durability.keeps_nothing()
            || state.targets.any_needs_callback_url())
        .then(CallbackSecret::generate);
        let mut record = if durability.keeps_nothing() {
            // Never stored: the driver keeps only what an update would write (see
            // `persist::kept`), so the key and input are not copied into it.
            CallerRecord::new(
                id,
                RequestKey::empty(),
                Content::empty(),
                stored_options,
                scheduled_at,
            )
        } else {
            let mut record = CallerRecord::new(
                id,
                key.to_request_key(),
                input.clone(),
                stored_options,
                scheduled_at,
            );
            record.deadlines = OperationDeadlines {
                schedule_to_close: deadlines.schedule_to_close.map(clock::system_at),
                schedule_to_start: deadlines.schedule_to_start.map(clock::system_at),
                start_to_close: None,
            };
            record.callback_secret.clone_from(&callback_secret);
            record
        };
        if let Some(replicas) = &durability.replicas {
            record.lease = Some(Lease::new(
                durability.owner.clone(),
                scheduled_at + replicas.lease_duration(),
            ));
        }
        let spec = Spec {
            headers: options.headers,
            start: Some(Box::new(StartBody {
                input,
                links: options.links,
            })),
            cancellation_type: options.cancellation_type,
            retry,
            callback_secret: callback_secret.clone(),
            trace: crate::observe::TraceContext::current().map(Box::new),
        };
        let (local, attached) =
            match self
                .inner
                .registry
                .register(id, key, Record::new(id, scheduled), callback_secret)
            {
                Ok(registered) => registered,
                // The same request id runs already (found by the registry only when it is where
                // operations live; a store finds it otherwise): follow that operation.
                Err(running) if durability.keeps_nothing() => {
                    return Ok(Prepared::Running(running));
                }
                Err(_) => return Err(CallError::Invalid(format!("operation id {id} is in use"))),
            };
        self.ensure_caretaker();
        let new = NewOperation {
            record,
            endpoint: state,
            spec,
            deadlines,
            scope_cancel: scope.map(|s| s.cancel),
            span,
        };
        Ok(Prepared::New(local, attached, Box::new(new)))
    }

    /// Runs a local operation's task on `runtime`.
    pub(crate) fn spawn_task(&self, runtime: &tokio::runtime::Handle, local: Local, begin: Begin) {
        let id = local.id;
        let task = runtime.spawn(task::run(self.clone(), local, begin));
        self.inner.registry.set_abort(id, task.abort_handle());
    }
}

/// A call, checked and registered.
enum Prepared {
    /// A new operation, to record and drive.
    New(Local, Attached, Box<NewOperation>),
    /// An operation with the same request id runs already: the call follows it.
    Running(Attached),
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
