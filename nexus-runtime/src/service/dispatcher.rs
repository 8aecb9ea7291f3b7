//! The dispatcher: routes start and cancel requests to service handlers and runs async work.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tracing::Instrument as _;

use super::durable::{self, DurabilityOptions, Durable};
use super::handler::{RawStart, ServiceHandler};
use super::invoke::{Invocation, invoke, unknown_operation};
use super::quota::Quota;
use super::running::{CancelMiss, RunningOperations};
use super::work::Launch;
use crate::codec::payload::CodecSlot;
use crate::codec::{Content, PayloadCodec};
use crate::completion::{Callback, CompletionSender};
use crate::error::{HandlerError, StartError};
use crate::observe::metrics::{HANDLE_CANCEL, HANDLE_START, Incoming};
use crate::observe::{self, outcome, spans};
use crate::operation::{AsyncOperation, ContextParts};
use crate::protocol::{self, header};
use crate::security::CallbackGuard;
use crate::security::{AccessPolicy, Principal};
use crate::store::Store;
use crate::transport::{CancelRequest, StartRequest, StartResponse};

/// Hosts service handlers and runs their operations. Every transport goes through it: the
/// in-process transport calls it directly, the HTTP server after decoding a request.
///
/// It owns the behaviour the protocol promises on the handler side:
/// - every request comes from a [`Principal`] ([`start_as`](Self::start_as),
///   [`cancel_as`](Self::cancel_as); anonymous with [`start`](Self::start) and
///   [`cancel`](Self::cancel)): the [access policy](DispatcherBuilder::access) is checked first
///   (UNAUTHORIZED), async operations count against the principal's
///   [quota](DispatcherBuilder::quota) (RESOURCE_EXHAUSTED), and only the principal that started
///   an operation may cancel it;
/// - unknown services and operations are NOT_FOUND (without listing what exists);
/// - a handler that panics becomes INTERNAL and the dispatcher keeps serving;
/// - the request deadline bounds the handler (its future is dropped at expiry, answered
///   UPSTREAM_TIMEOUT), and dropping the request drops the handler's future;
/// - async work runs in the background, can be canceled by token, and its completion is delivered
///   to the caller's callback.
///
/// With a [store](DispatcherBuilder::store) it is also durable: starts are deduplicated by
/// request id, async operations and their completions are recorded, completions to callback URLs
/// go through an outbox that is retried across restarts, and operations left unfinished by a
/// previous process are resumed or failed (see [`DispatcherBuilder::store`]).
///
/// ```
/// use nexus_runtime::service::Dispatcher;
/// # #[nexus_runtime::nexus_service(name = "echo.v1")]
/// # pub trait Echo {
/// #     async fn echo(&self, ctx: nexus_runtime::OperationContext, input: String)
/// #         -> nexus_runtime::OperationResult<String>;
/// # }
/// # struct MyEcho;
/// # impl Echo for MyEcho {
/// #     async fn echo(&self, _ctx: nexus_runtime::OperationContext, input: String)
/// #         -> nexus_runtime::OperationResult<String> { Ok(input.into()) }
/// # }
/// let dispatcher = Dispatcher::builder()
///     .service(EchoService::handler(MyEcho))
///     .build();
/// assert_eq!(dispatcher.service_names(), ["echo.v1"]);
/// ```
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub services: BTreeMap<String, Arc<dyn ServiceHandler>>,
    pub running: RunningOperations,
    pub access: AccessPolicy,
    pub quota: Quota,
    completion_sender: Mutex<Option<Arc<dyn CompletionSender>>>,
    pub callback_guard: CallbackGuard,
    pub durable: Option<Arc<Durable>>,
    /// Decodes inputs, encodes results.
    codec: CodecSlot,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The background tasks hold only weak references: stop them with the last handle.
        if let Some(durable) = &self.durable {
            durable.stop.cancel();
        }
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("services", &self.service_names())
            .field("running", &self.inner.running.len())
            .field("store", &self.has_store())
            .field("callback_guard", &self.inner.callback_guard)
            .field("payload_codec", &self.inner.codec)
            .finish()
    }
}

/// Builds a [`Dispatcher`].
#[derive(Default)]
pub struct DispatcherBuilder {
    services: BTreeMap<String, Arc<dyn ServiceHandler>>,
    completion_sender: Option<Arc<dyn CompletionSender>>,
    callback_guard: Option<CallbackGuard>,
    store: Option<Arc<dyn Store>>,
    durability: Option<DurabilityOptions>,
    access: AccessPolicy,
    quota: Quota,
    codec: CodecSlot,
}

impl DispatcherBuilder {
    /// Adds a service handler.
    ///
    /// # Panics
    /// If a service with the same name was already added: two handlers for one service is a
    /// configuration mistake, caught at start-up.
    #[must_use]
    pub fn service(mut self, handler: impl ServiceHandler) -> Self {
        let name = handler.name().to_owned();
        assert!(
            !self.services.contains_key(&name),
            "service `{name}` is registered twice in one dispatcher"
        );
        self.services.insert(name, Arc::new(handler));
        self
    }

    /// Sets what delivers completions to callback URLs (the HTTP server sets its own). With a
    /// store, each call of the sender is one attempt of the outbox, which does the retrying:
    /// give it no retries of its own.
    #[must_use]
    pub fn completion_sender(mut self, sender: impl CompletionSender) -> Self {
        self.completion_sender = Some(Arc::new(sender));
        self
    }

    /// Where completions may be delivered: every start request with a callback URL is checked
    /// against `guard` before anything runs or is recorded (a refused URL or callback header is
    /// answered BAD_REQUEST naming it), and the completion sender the
    /// [`HandlerServer`](crate::server::HandlerServer) installs checks the addresses it connects
    /// to against the same guard.
    ///
    /// Without this, the guard is [`CallbackGuard::default`]: https to public hosts only. A
    /// handler whose callers' callback receivers are on its own network (a Temporal server on the
    /// same machine or in the same cluster) must name them in rules:
    ///
    /// ```
    /// use nexus_runtime::security::CallbackGuard;
    /// use nexus_runtime::service::Dispatcher;
    /// let guard = CallbackGuard::new(["http://127.0.0.1:7243", "https://temporal.internal:7243"])
    ///     .expect("valid rules");
    /// let dispatcher = Dispatcher::builder().callback_guard(guard).build();
    /// assert_eq!(dispatcher.callback_guard().rules().len(), 2);
    /// ```
    #[must_use]
    pub fn callback_guard(mut self, guard: CallbackGuard) -> Self {
        self.callback_guard = Some(guard);
        self
    }

    /// Who may call which services and operations (default: everyone may call everything). Checked
    /// on every start and cancel, before the service is looked up, so a refused caller gets
    /// UNAUTHORIZED (403) whether or not what it asked for exists. See [`AccessPolicy`].
    #[must_use]
    pub fn access(mut self, policy: AccessPolicy) -> Self {
        self.access = policy;
        self
    }

    /// Caps on the running async operations of each principal (default: [`Quota::default`],
    /// 10,000 operations and 1 GiB of inputs per principal; [`Quota::unlimited`] for none).
    #[must_use]
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// Makes the dispatcher durable with `store` (a `MemoryStore`, `SqliteStore` or
    /// `PostgresStore`), as its [`DurabilityOptions`] say:
    ///
    /// - **Starts are deduplicated by request id, per principal**: the first request with a given
    ///   (principal, service, operation, request id) runs the handler; every later one gets the
    ///   recorded answer (the same sync result, the same operation token, the same OperationError
    ///   or non-retryable HandlerError) without running it again. While the first still runs, a retry is answered
    ///   UNAVAILABLE (retryable). A retryable error, a panic or a missed deadline is not recorded:
    ///   the retry runs the handler again. Requests without a request id are not deduplicated.
    ///   The same request id from another principal is another operation: it never sees, moves
    ///   or cancels the first one.
    /// - **Async operations are recorded** with the answer, under a lease of this dispatcher's
    ///   owner id, and cancel requests are recorded before the work is signalled.
    /// - **Completions go through an outbox**: finishing an operation and enqueueing its
    ///   completion is one transaction; a sender loop delivers it to the callback URL, retrying
    ///   with backoff (across restarts) until it is accepted, rejected for good, or too old (see
    ///   [`OutboxOptions`](super::OutboxOptions)). In-process callers get theirs directly.
    /// - **Nothing running is silently lost**: at start-up the dispatcher takes over the
    ///   operations its owner id left running (and, periodically, those whose owner's lease
    ///   expired), and resumes those declared [resumable](crate::OperationContext::start_resumable)
    ///   by calling their operation method again, or completes the others as failed with a
    ///   message saying the handler restarted.
    ///
    /// With a store, [`build`](Self::build) must run inside a Tokio runtime: it starts the
    /// dispatcher's background tasks (recovery and lease renewal, and the outbox sender).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// How the store is used: owner id, leases, outbox (see [`DurabilityOptions`]); only
    /// meaningful with a [store](Self::store).
    #[must_use]
    pub fn durability(mut self, options: DurabilityOptions) -> Self {
        self.durability = Some(options);
        self
    }

    /// Transforms payloads end to end with `codec` (for example decrypts and encrypts them with
    /// [`AesGcmCodec`](crate::codec::aes_gcm::AesGcmCodec)): every input is decoded before the
    /// operation method sees it, every result (a sync answer, or an async operation's completion)
    /// is encoded before it is recorded in the store or sent. Callers must encode and decode with
    /// a matching codec (see [`ClientBuilder::payload_codec`](crate::client::ClientBuilder::payload_codec)).
    ///
    /// An input the codec cannot decode is answered BAD_REQUEST with the codec's message (such as
    /// an unknown key id); a result it cannot encode is INTERNAL for a sync answer and fails an
    /// async operation. Given several times, the codecs form a chain in that order (see
    /// [`CodecChain`](crate::codec::CodecChain)). The details of operation errors are encoded too
    /// (see [`codec::details`](crate::codec::details)); messages travel as they are.
    #[must_use]
    pub fn payload_codec(mut self, codec: impl PayloadCodec) -> Self {
        self.codec.push(Arc::new(codec));
        self
    }

    /// Builds the dispatcher.
    ///
    /// # Panics
    /// With a store, outside a Tokio runtime.
    pub fn build(self) -> Dispatcher {
        let durability = self.durability;
        let durable = self
            .store
            .map(|store| Arc::new(Durable::new(store, durability.unwrap_or_default())));
        let dispatcher = Dispatcher {
            inner: Arc::new(Inner {
                services: self.services,
                running: RunningOperations::default(),
                access: self.access,
                quota: self.quota,
                completion_sender: Mutex::new(self.completion_sender),
                callback_guard: self.callback_guard.unwrap_or_default(),
                durable: durable.clone(),
                codec: self.codec,
            }),
        };
        if let Some(durable) = durable {
            assert!(
                tokio::runtime::Handle::try_current().is_ok(),
                "a Dispatcher with a store must be built inside a Tokio runtime: it starts \
                 background tasks (recovery, lease renewal, the completion outbox)"
            );
            durable::spawn_keeper(&dispatcher, durable.clone());
            durable::spawn_outbox(&dispatcher, durable);
        }
        dispatcher
    }
}

impl Dispatcher {
    /// A builder.
    pub fn builder() -> DispatcherBuilder {
        DispatcherBuilder::default()
    }

    /// The wire names of the hosted services.
    pub fn service_names(&self) -> Vec<&str> {
        self.inner.services.keys().map(String::as_str).collect()
    }

    /// The number of async operations currently running.
    pub fn running_operations(&self) -> usize {
        self.inner.running.len()
    }

    /// The number of async operations the principal named `name` has running here (what its
    /// [quota](DispatcherBuilder::quota) counts).
    pub fn running_operations_of(&self, name: &str) -> usize {
        self.inner.running.running_of(name)
    }

    /// Whether `principal` may call `operation` of `service` under the dispatcher's
    /// [access policy](DispatcherBuilder::access): UNAUTHORIZED (403) naming the caller if not.
    /// The dispatcher checks it on every request; a server may call it early too (before reading
    /// a request's body).
    pub fn check_access(
        &self,
        principal: &Principal,
        service: &str,
        operation: &str,
    ) -> Result<(), HandlerError> {
        if self.inner.access.allows(principal, service, operation) {
            return Ok(());
        }
        tracing::info!(%principal, %service, %operation, "caller refused by the access policy");
        Err(HandlerError::unauthorized(format!(
            "caller `{principal}` may not call `{service}/{operation}`"
        )))
    }

    /// Whether the dispatcher was built with a store.
    pub fn has_store(&self) -> bool {
        self.inner.durable.is_some()
    }

    /// A page of the async operations in the store (see [`HandlerStore::list_async`]), for
    /// operators. Errors with [`StoreError::Invalid`](crate::store::StoreError::Invalid) without a store.
    ///
    /// [`HandlerStore::list_async`]: crate::store::HandlerStore::list_async
    pub async fn async_operations(
        &self,
        query: &crate::store::AsyncQuery,
    ) -> Result<Vec<crate::store::AsyncOperationRecord>, crate::store::StoreError> {
        self.durable_or_err()?.handler.list_async(query).await
    }

    /// A page of the completion deliveries in the outbox (see
    /// [`OutboxStore::list_deliveries`]), for operators. Errors with [`StoreError::Invalid`](crate::store::StoreError::Invalid)
    /// without a store.
    ///
    /// [`OutboxStore::list_deliveries`]: crate::store::OutboxStore::list_deliveries
    pub async fn deliveries(
        &self,
        query: &crate::store::DeliveryQuery,
    ) -> Result<Vec<crate::store::Delivery>, crate::store::StoreError> {
        self.durable_or_err()?.outbox.list_deliveries(query).await
    }

    /// Sends a dead delivery again, now (see [`OutboxStore::redeliver`]); `false` if it is not
    /// dead. Errors with [`StoreError::Invalid`](crate::store::StoreError::Invalid) without a store.
    ///
    /// [`OutboxStore::redeliver`]: crate::store::OutboxStore::redeliver
    pub async fn redeliver(
        &self,
        id: crate::store::DeliveryId,
    ) -> Result<bool, crate::store::StoreError> {
        let durable = self.durable_or_err()?;
        let redelivered = durable.outbox.redeliver(id, crate::clock::now()).await?;
        if redelivered {
            durable.wake_outbox.notify_one();
        }
        Ok(redelivered)
    }

    fn durable_or_err(&self) -> Result<&Arc<Durable>, crate::store::StoreError> {
        self.inner
            .durable
            .as_ref()
            .ok_or_else(|| crate::store::StoreError::Invalid("the dispatcher has no store".into()))
    }

    /// Where completions may be delivered (see [`DispatcherBuilder::callback_guard`]).
    pub fn callback_guard(&self) -> &CallbackGuard {
        &self.inner.callback_guard
    }

    /// Sets the sender for URL callbacks if none is set yet (used by servers).
    pub fn set_default_completion_sender(&self, sender: Arc<dyn CompletionSender>) {
        let mut slot = self
            .inner
            .completion_sender
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(sender);
            if let Some(durable) = &self.inner.durable {
                // Deliveries may be waiting for a sender (enqueued before a restart).
                durable.wake_outbox.notify_one();
            }
        }
    }

    /// The payload codec, if one was configured.
    pub(crate) fn payload_codec(&self) -> Option<&Arc<dyn PayloadCodec>> {
        self.inner.codec.get()
    }

    pub(crate) fn completion_sender(&self) -> Option<Arc<dyn CompletionSender>> {
        self.inner
            .completion_sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops a dispatcher with a store, as a process does before it exits: its background tasks
    /// end, new starts are answered UNAVAILABLE, and the work of its running async operations is
    /// dropped **without** completing them: they stay running in the store, with their leases
    /// released, and the next dispatcher on the store (a restarted process, or another replica)
    /// resumes or fails them at once. Without a store it does nothing (running work continues).
    pub async fn shutdown(&self) {
        let Some(durable) = &self.inner.durable else {
            return;
        };
        durable.stop.cancel();
        let tokens = self.inner.running.tokens();
        if tokens.is_empty() {
            return;
        }
        match durable
            .handler
            .release_async(&durable.options.owner, &tokens)
            .await
        {
            Ok(released) => tracing::info!(released, "released the leases of running operations"),
            Err(e) => tracing::warn!(error = %e, "cannot release the leases of running operations"),
        }
    }

    fn handler(&self, service: &str) -> Result<&Arc<dyn ServiceHandler>, HandlerError> {
        self.inner.services.get(service).ok_or_else(|| {
            HandlerError::not_found(format!("service `{service}` is not served here"))
        })
    }

    /// Handles a start request from the anonymous principal (see [`start_as`](Self::start_as)).
    pub async fn start(&self, request: StartRequest) -> Result<StartResponse, StartError> {
        self.start_as(&Principal::anonymous(), request).await
    }

    /// Handles a start request from `principal`: checks the access policy, runs the operation
    /// method (which sees the principal on its context), and for an async answer reserves the
    /// operation under the principal's quota. With a store, the request id is deduplicated
    /// within the principal's own requests.
    ///
    /// The request runs inside a `nexus.handle` span whose parent is the caller's trace context
    /// (see [`observe`](crate::observe)); that context is stored with the callback, for the
    /// completion.
    pub async fn start_as(
        &self,
        principal: &Principal,
        request: StartRequest,
    ) -> Result<StartResponse, StartError> {
        let span = spans::handle(
            "start",
            &request.service,
            &request.operation,
            Some(&request.request_id),
            principal,
        );
        let metered = Incoming::start(&request.service, &request.operation, HANDLE_START);
        let incoming = observe::extract(&span, &request.headers);
        let answer = observe::scope(incoming, self.start_traced(principal, request))
            .instrument(span.clone())
            .await;
        metered.started(&answer);
        match &answer {
            Ok(StartResponse::Sync { .. }) => spans::record(&span, "nexus.answer", "sync"),
            Ok(StartResponse::Async { token, .. }) => {
                spans::record(&span, "nexus.answer", "async");
                spans::record(&span, "nexus.token", token);
            }
            Err(e) => spans::record(&span, "nexus.answer", outcome::StartErrorLabel(e)),
        }
        answer
    }

    async fn start_traced(
        &self,
        principal: &Principal,
        mut request: StartRequest,
    ) -> Result<StartResponse, StartError> {
        self.check_access(principal, &request.service, &request.operation)?;
        let handler = self.handler(&request.service)?.clone();
        self.check_callback(&request)?;
        if let Some(Callback::Url { headers, .. }) = &mut request.callback {
            observe::inject_callback(headers);
        }
        match &self.inner.durable {
            None => self.start_direct(&handler, principal, request).await,
            Some(durable) => {
                self.start_durable(durable, &handler, principal, request)
                    .await
            }
        }
    }

    /// Checks a start's callback (URL and headers) against the callback guard, before it runs or
    /// is recorded. (Its operation timeout is checked where the deadline is computed, by
    /// [`operation_deadline`], on both paths before anything runs.)
    fn check_callback(&self, request: &StartRequest) -> Result<(), HandlerError> {
        if let Some(Callback::Url { url, headers }) = &request.callback {
            let headers = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            self.inner
                .callback_guard
                .check_callback(url, headers)
                .map_err(|e| HandlerError::bad_request(e.to_string()))?;
        }
        Ok(())
    }

    /// A start without a store: run the handler, launch async work.
    async fn start_direct(
        &self,
        handler: &Arc<dyn ServiceHandler>,
        principal: &Principal,
        mut request: StartRequest,
    ) -> Result<StartResponse, StartError> {
        let operation_deadline = operation_deadline(&request)?;
        let input_bytes = request.input.data.len();
        let invocation = invocation(&mut request, principal, operation_deadline);
        let answered = invoke(handler, invocation, self.payload_codec()).await?;
        match answered.raw {
            RawStart::Sync(output) => Ok(StartResponse::Sync {
                output,
                links: answered.links,
            }),
            RawStart::Async(op) if op.elsewhere => Ok(StartResponse::Async {
                token: elsewhere_token(&op)?,
                links: answered.links,
            }),
            RawStart::Async(op) => {
                let parts = answered.parts;
                let (token, cancel) = self.reserve(
                    &op,
                    &parts.service,
                    &parts.operation,
                    principal,
                    input_bytes,
                )?;
                self.spawn_work(
                    op,
                    Launch {
                        token: token.clone(),
                        service: parts.service,
                        operation: parts.operation,
                        request_id: parts.request_id,
                        principal: parts.principal,
                        headers: parts.headers,
                        deadline: operation_deadline,
                        callback: request.callback,
                        resumed: false,
                        start_time: crate::clock::now(),
                        cancel,
                    },
                );
                Ok(StartResponse::Async {
                    token,
                    links: answered.links,
                })
            }
        }
    }

    /// Handles a cancel request from the anonymous principal (see [`cancel_as`](Self::cancel_as)).
    pub async fn cancel(&self, request: CancelRequest) -> Result<(), HandlerError> {
        self.cancel_as(&Principal::anonymous(), request).await
    }

    /// Handles a cancel request from `principal`: signals cancellation to the running operation
    /// with the token (with a store, after recording the request). Only the principal that
    /// started the operation may cancel it: to any other, the token is answered NOT_FOUND, as an
    /// unknown one is, so that a token confirms nothing to someone who guessed or overheard it.
    pub async fn cancel_as(
        &self,
        principal: &Principal,
        request: CancelRequest,
    ) -> Result<(), HandlerError> {
        let span = spans::handle(
            "cancel",
            &request.service,
            &request.operation,
            None,
            principal,
        );
        spans::record(&span, "nexus.token", &request.token);
        let metered = Incoming::start(&request.service, &request.operation, HANDLE_CANCEL);
        let incoming = observe::extract(&span, &request.headers);
        let answer = observe::scope(incoming, self.cancel_traced(principal, request))
            .instrument(span.clone())
            .await;
        metered.canceled(&answer);
        match &answer {
            Ok(()) => spans::record(&span, "nexus.answer", "cancel_requested"),
            Err(e) => spans::record(&span, "nexus.answer", outcome::HandlerErrorLabel(e)),
        }
        answer
    }

    async fn cancel_traced(
        &self,
        principal: &Principal,
        request: CancelRequest,
    ) -> Result<(), HandlerError> {
        self.check_access(principal, &request.service, &request.operation)?;
        let handler = self.handler(&request.service)?;
        if !handler
            .operation_names()
            .contains(&request.operation.as_str())
        {
            return Err(unknown_operation(&request.service, &request.operation));
        }
        let found = self.inner.running.cancel_signal(
            principal,
            &request.service,
            &request.operation,
            &request.token,
        );
        match (&self.inner.durable, found) {
            (None, Ok(signal)) => {
                signal.cancel();
                Ok(())
            }
            (Some(durable), Ok(signal)) => self.cancel_running(durable, &request, signal).await,
            (Some(durable), Err(CancelMiss::Unknown)) => {
                self.cancel_recorded(durable, principal, &request).await
            }
            (None, Err(CancelMiss::Unknown)) => Err(no_such_operation(&request)),
            (_, Err(CancelMiss::Foreign)) => Err(foreign_operation(principal, &request)),
            (_, Err(CancelMiss::Mismatch { service, operation })) => {
                Err(wrong_operation(&request, &service, &operation))
            }
        }
    }
}

/// When the operation must end, from its `Operation-Timeout`; a timeout longer than
/// [`protocol::MAX_TIMEOUT`] (or beyond this host's clock) is BAD_REQUEST naming the header.
pub(crate) fn operation_deadline(request: &StartRequest) -> Result<Option<Instant>, HandlerError> {
    let Some(timeout) = request.operation_timeout else {
        return Ok(None);
    };
    let deadline = (timeout <= protocol::MAX_TIMEOUT)
        .then(|| Instant::now().checked_add(timeout))
        .flatten();
    deadline.map(Some).ok_or_else(|| {
        HandlerError::bad_request(format!(
            "invalid `{}` header: {} is longer than the longest timeout accepted ({})",
            header::OPERATION_TIMEOUT,
            protocol::format_duration(timeout),
            humantime::format_duration(protocol::MAX_TIMEOUT)
        ))
    })
}

/// What the operation method of a start request sees: the request's names, id, headers, links
/// and input are moved out of `request` (not copied); [`restore`] puts them back from the parts
/// [`invoke`] gives back, for a caller that needs the request afterwards.
pub(crate) fn invocation(
    request: &mut StartRequest,
    principal: &Principal,
    operation_deadline: Option<Instant>,
) -> Invocation {
    Invocation {
        parts: ContextParts {
            service: std::mem::take(&mut request.service),
            operation: std::mem::take(&mut request.operation),
            request_id: std::mem::take(&mut request.request_id),
            principal: principal.clone(),
            headers: std::mem::take(&mut request.headers),
            links: std::mem::take(&mut request.links),
            deadline: request.request_deadline,
            operation_deadline,
            cancel: Default::default(),
            has_callback: request.callback.is_some(),
            resumed: false,
            response_links: Mutex::default(),
        },
        input: std::mem::take(&mut request.input),
        request_deadline: request.request_deadline,
    }
}

/// The token of an async operation completed elsewhere, checked.
pub(crate) fn elsewhere_token(op: &AsyncOperation<Content>) -> Result<String, HandlerError> {
    let token = op.token.clone().unwrap_or_default();
    super::work::check_token(&token)?;
    Ok(token)
}

/// Puts the parts [`invocation`] moved out of `request` back.
pub(crate) fn restore(request: &mut StartRequest, parts: ContextParts) {
    request.service = parts.service;
    request.operation = parts.operation;
    request.request_id = parts.request_id;
    request.headers = parts.headers;
    request.links = parts.links;
}

pub(crate) fn no_such_operation(request: &CancelRequest) -> HandlerError {
    HandlerError::not_found(format!(
        "no running `{}` operation has token `{}`",
        request.operation, request.token
    ))
}

/// NOT_FOUND for a cancel request from a principal that did not start the operation: the same
/// answer as for an unknown token (logged, since it may be a probe).
pub(crate) fn foreign_operation(principal: &Principal, request: &CancelRequest) -> HandlerError {
    tracing::warn!(
        %principal,
        token = %request.token,
        "refused a cancel request for an operation another caller started"
    );
    no_such_operation(request)
}

pub(crate) fn wrong_operation(
    request: &CancelRequest,
    service: &str,
    operation: &str,
) -> HandlerError {
    HandlerError::not_found(format!(
        "token `{}` belongs to operation `{service}/{operation}`, not `{}/{}`",
        request.token, request.service, request.operation
    ))
}
