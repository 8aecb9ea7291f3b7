//! The dispatcher: routes start and cancel requests to service handlers and runs async work.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::builder::DispatcherBuilder;
use super::durable::{self, Durable};
use super::handler::{RawStart, ServiceHandler};
use super::invoke::{elsewhere_token, invocation, invoke, operation_deadline, unknown_operation};
use super::names::NameTable;
use super::quota::Quota;
use super::running::{
    CancelMiss, RunningOperations, foreign_operation, no_such_operation, wrong_operation,
};
use super::work::{self, Launch, Reserved};
use crate::codec::payload::CodecSlot;
use crate::codec::{Content, PayloadCodec};
use crate::completion::{Callback, Completion, CompletionSender};
use crate::error::{HandlerError, StartError};
use crate::observe::metrics::{HANDLE_CANCEL, HANDLE_START, Incoming};
use crate::observe::spans::InSpan as _;
use crate::observe::{self, outcome, spans};
use crate::operation::AsyncOperation;
use crate::security::CallbackGuard;
use crate::security::{AccessPolicy, Principal};
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
    /// The hosted operations' names, shared by their running operations.
    pub names: NameTable,
    pub running: RunningOperations,
    pub access: AccessPolicy,
    pub quota: Quota,
    pub completion_sender: Mutex<Option<Arc<dyn CompletionSender>>>,
    pub callback_guard: CallbackGuard,
    pub durable: Option<Arc<Durable>>,
    /// Decodes inputs, encodes results.
    pub codec: CodecSlot,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The background tasks hold only weak references: stop them with the last handle.
        if let Some(durable) = &self.durable {
            durable.stop();
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
        durable.stop();
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
        // Pinned where it is made, and awaited through the pin: the future (kilobytes: the
        // whole start) is not moved into each wrapper and then into the await.
        let traced = std::pin::pin!(self.start_traced(principal, request));
        let answer = if incoming.is_none() && span.is_disabled() {
            traced.await
        } else {
            observe::scope(incoming, traced).in_span(span.clone()).await
        };
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
        let handler = self.handler(&request.service)?;
        self.check_callback(&request)?;
        if let Some(Callback::Url { headers, .. }) = &mut request.callback {
            observe::inject_callback(headers);
        }
        match &self.inner.durable {
            None => std::pin::pin!(self.start_direct(handler, principal, request)).await,
            // Not boxed: the deduplicated start boxes what only a start with a request id
            // awaits (its claim), so that the many starts without one allocate nothing here.
            // Every start's future is sized by this branch's, though (about 1 KiB more than
            // `start_direct`'s).
            Some(durable) => {
                std::pin::pin!(durable::start_durable(
                    self, durable, handler, principal, request
                ))
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
                let reserved = self.reserve(
                    &op,
                    &parts.service,
                    &parts.operation,
                    principal,
                    input_bytes,
                )?;
                let token = reserved.token.to_string();
                self.spawn_work(
                    op,
                    Launch {
                        reserved,
                        request_id: parts.request_id,
                        principal: parts.principal,
                        headers: parts.headers,
                        deadline: operation_deadline,
                        callback: request.callback,
                        resumed: false,
                        start_time: crate::clock::now(),
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
            .in_span(span.clone())
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
        self.handler(&request.service)?;
        if !self.inner.names.hosts(&request.service, &request.operation) {
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
            (Some(durable), Ok(signal)) => durable::cancel_running(durable, &request, signal).await,
            (Some(durable), Err(CancelMiss::Unknown)) => {
                durable::cancel_recorded(self, durable, principal, &request).await
            }
            (None, Err(CancelMiss::Unknown)) => Err(no_such_operation(&request)),
            (_, Err(CancelMiss::Foreign)) => Err(foreign_operation(principal, &request)),
            (_, Err(CancelMiss::Mismatch { service, operation })) => {
                Err(wrong_operation(&request, &service, &operation))
            }
        }
    }

    /// Picks the token of `op` and reserves it in the running table for `principal` (see
    /// [`work::reserve`]).
    pub(crate) fn reserve(
        &self,
        op: &AsyncOperation<Content>,
        service: &str,
        operation: &str,
        principal: &Principal,
        input_bytes: usize,
    ) -> Result<Reserved, HandlerError> {
        work::reserve(self, op, service, operation, principal, input_bytes)
    }

    /// Runs the work of a reserved operation in the background (see [`work::spawn`]).
    pub(crate) fn spawn_work(&self, op: AsyncOperation<Content>, launch: Launch) {
        work::spawn(self, op, launch);
    }

    /// Completes an async operation: records, then delivers (see [`work::finish`]).
    pub(crate) async fn finish_work(&self, callback: Option<Callback>, completion: Completion) {
        work::finish(self, callback, completion).await;
    }
}
