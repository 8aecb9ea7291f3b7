//! The dispatcher: routes start and cancel requests to service handlers and runs async work.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::FutureExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::handler::{RawStart, ServiceHandler};
use super::running::{CancelMiss, RunningOperation, RunningOperations};
use crate::codec::Content;
use crate::completion::{Callback, Completion, CompletionSender};
use crate::error::{HandlerError, OperationError, StartError};
use crate::link::Link;
use crate::operation::{AsyncContext, AsyncOperation, CallScope, ContextParts, OperationContext};
use crate::transport::{CancelRequest, StartRequest, StartResponse};

/// Hosts service handlers and runs their operations. Every transport goes through it: the
/// in-process transport calls it directly, the HTTP server after decoding a request.
///
/// It owns the behaviour the protocol promises on the handler side:
/// - unknown services and operations are NOT_FOUND, naming what exists;
/// - a handler that panics becomes INTERNAL and the dispatcher keeps serving;
/// - the request deadline bounds the handler (its future is dropped at expiry, answered
///   UPSTREAM_TIMEOUT), and dropping the request drops the handler's future;
/// - async work runs in the background, can be canceled by token, and its completion is delivered
///   to the caller's callback.
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
    inner: Arc<Inner>,
}

struct Inner {
    services: BTreeMap<String, Arc<dyn ServiceHandler>>,
    running: RunningOperations,
    completion_sender: Mutex<Option<Arc<dyn CompletionSender>>>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("services", &self.service_names())
            .field("running", &self.inner.running.len())
            .finish()
    }
}

/// Builds a [`Dispatcher`].
#[derive(Default)]
pub struct DispatcherBuilder {
    services: BTreeMap<String, Arc<dyn ServiceHandler>>,
    completion_sender: Option<Arc<dyn CompletionSender>>,
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

    /// Sets what delivers completions to callback URLs (the HTTP server sets its own).
    #[must_use]
    pub fn completion_sender(mut self, sender: impl CompletionSender) -> Self {
        self.completion_sender = Some(Arc::new(sender));
        self
    }

    /// Builds the dispatcher.
    pub fn build(self) -> Dispatcher {
        Dispatcher {
            inner: Arc::new(Inner {
                services: self.services,
                running: RunningOperations::default(),
                completion_sender: Mutex::new(self.completion_sender),
            }),
        }
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

    /// Sets the sender for URL callbacks if none is set yet (used by servers).
    pub fn set_default_completion_sender(&self, sender: Arc<dyn CompletionSender>) {
        let mut slot = self
            .inner
            .completion_sender
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(sender);
        }
    }

    fn handler(&self, service: &str) -> Result<&Arc<dyn ServiceHandler>, HandlerError> {
        self.inner.services.get(service).ok_or_else(|| {
            HandlerError::not_found(format!(
                "service `{service}` is not served here; available services: {}",
                quoted_list(self.inner.services.keys().map(String::as_str))
            ))
        })
    }

    /// Handles a start request.
    pub async fn start(&self, request: StartRequest) -> Result<StartResponse, StartError> {
        let handler = self.handler(&request.service)?.clone();
        // Fires when this future is dropped (the caller went away) or finishes.
        let request_cancel = CancellationToken::new();
        let _cancel_on_drop = request_cancel.clone().drop_guard();
        let operation_deadline = request.operation_timeout.map(|t| Instant::now() + t);
        let StartRequest {
            service,
            operation,
            request_id,
            headers,
            links,
            callback,
            request_deadline,
            input,
            ..
        } = request;
        // The request's names, id, headers and links move into the context; the dispatcher keeps
        // a reference for its messages and takes them back for an async operation.
        let parts = Arc::new(ContextParts {
            service,
            operation,
            request_id,
            headers,
            links,
            deadline: request_deadline,
            operation_deadline,
            cancel: request_cancel.clone(),
            has_callback: callback.is_some(),
            response_links: Mutex::default(),
        });
        let ctx = OperationContext::new(parts.clone());
        let Some(start) = handler.start(&parts.operation, ctx, input) else {
            return Err(HandlerError::not_found(format!(
                "service `{}` has no operation `{}`; its operations are: {}",
                parts.service,
                parts.operation,
                quoted_list(handler.operation_names().into_iter())
            ))
            .into());
        };
        let scope = CallScope {
            deadline: earliest(request_deadline, operation_deadline),
            cancel: request_cancel,
        };
        let guarded = AssertUnwindSafe(scope.run(start)).catch_unwind();
        let outcome = match request_deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, guarded)
                .await
                .map_err(|_| {
                    HandlerError::upstream_timeout(format!(
                        "operation `{}` did not answer before the request deadline",
                        parts.operation
                    ))
                })?,
            None => guarded.await,
        };
        let raw = outcome.map_err(|panic| {
            tracing::error!(
                service = %parts.service,
                operation = %parts.operation,
                "handler panicked: {}",
                panic_message(&*panic)
            );
            HandlerError::internal(format!(
                "handler of `{}` panicked: {}",
                parts.operation,
                panic_message(&*panic)
            ))
        })??;
        let links = take_links(&parts.response_links);
        match raw {
            RawStart::Sync(output) => Ok(StartResponse::Sync { output, links }),
            RawStart::Async(op) => {
                // The handler has returned, so its context is usually gone: take the parts back
                // rather than copy them.
                let (service, operation, request_id, headers) = match Arc::try_unwrap(parts) {
                    Ok(p) => (p.service, p.operation, p.request_id, p.headers),
                    Err(p) => (
                        p.service.clone(),
                        p.operation.clone(),
                        p.request_id.clone(),
                        p.headers.clone(),
                    ),
                };
                let token = self.launch(
                    op,
                    service,
                    operation,
                    AsyncMeta {
                        request_id,
                        headers,
                        deadline: operation_deadline,
                        callback,
                    },
                )?;
                Ok(StartResponse::Async { token, links })
            }
        }
    }

    /// Registers and spawns the work of an async operation; returns its token.
    fn launch(
        &self,
        op: AsyncOperation<Content>,
        service: String,
        operation: String,
        meta: AsyncMeta,
    ) -> Result<String, HandlerError> {
        let token = op
            .token
            .clone()
            .unwrap_or_else(|| crate::id::new_v4().simple().to_string());
        if token.is_empty() || token.bytes().any(|b| b.is_ascii_control()) {
            return Err(HandlerError::internal(
                "the handler chose an operation token that is empty or not valid in a header",
            ));
        }
        let cancel = CancellationToken::new();
        let registered = self.inner.running.insert(
            &token,
            RunningOperation {
                service: service.clone(),
                operation: operation.clone(),
                cancel: cancel.clone(),
            },
        );
        if !registered {
            return Err(HandlerError::conflict(format!(
                "an operation with token `{token}` is already running"
            )));
        }
        let links = Arc::new(Mutex::new(Vec::new()));
        let ctx = AsyncContext {
            token: token.clone(),
            service,
            operation: operation.clone(),
            request_id: meta.request_id,
            headers: meta.headers,
            deadline: meta.deadline,
            cancel: cancel.clone(),
            links: links.clone(),
        };
        let scope = CallScope {
            deadline: meta.deadline,
            cancel,
        };
        let work = (op.work)(ctx);
        let dispatcher = self.clone();
        let callback = meta.callback;
        let token_for_task = token.clone();
        tokio::spawn(async move {
            let start_time = SystemTime::now();
            let outcome = AssertUnwindSafe(scope.run(work))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    Err(OperationError::failed(format!(
                        "handler of `{operation}` panicked: {}",
                        panic_message(&*panic)
                    )))
                });
            dispatcher.inner.running.remove(&token_for_task);
            let completion = Completion {
                token: token_for_task,
                outcome,
                links: take_links(&links),
                start_time: Some(start_time),
                close_time: Some(SystemTime::now()),
            };
            // Boxed: the delivery's state (an HTTP request) is only needed at the end, and would
            // otherwise enlarge the task of every running operation for its whole life.
            Box::pin(dispatcher.deliver(callback, completion)).await;
        });
        Ok(token)
    }

    async fn deliver(&self, callback: Option<Callback>, completion: Completion) {
        let token = completion.token.clone();
        let result = match callback {
            None => {
                tracing::warn!(%token, "async operation finished but the caller gave no callback");
                return;
            }
            Some(Callback::Local(sink)) => sink.complete(completion).await,
            Some(Callback::Url { url, headers }) => {
                let sender = self
                    .inner
                    .completion_sender
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                match sender {
                    Some(sender) => sender.send(url, headers, completion).await,
                    None => Err(HandlerError::internal(
                        "no completion sender is configured for URL callbacks",
                    )),
                }
            }
        };
        match result {
            Ok(()) => tracing::debug!(%token, "completion delivered"),
            Err(e) => tracing::warn!(%token, error = %e, "completion not delivered"),
        }
    }

    /// Handles a cancel request: signals cancellation to the running operation with the token.
    pub async fn cancel(&self, request: CancelRequest) -> Result<(), HandlerError> {
        let handler = self.handler(&request.service)?;
        if !handler
            .operation_names()
            .contains(&request.operation.as_str())
        {
            return Err(HandlerError::not_found(format!(
                "service `{}` has no operation `{}`",
                request.service, request.operation
            )));
        }
        match self
            .inner
            .running
            .cancel(&request.service, &request.operation, &request.token)
        {
            Ok(()) => Ok(()),
            Err(CancelMiss::Unknown) => Err(HandlerError::not_found(format!(
                "no running `{}` operation has token `{}`",
                request.operation, request.token
            ))),
            Err(CancelMiss::Mismatch { service, operation }) => {
                Err(HandlerError::not_found(format!(
                    "token `{}` belongs to operation `{service}/{operation}`, not `{}/{}`",
                    request.token, request.service, request.operation
                )))
            }
        }
    }
}

struct AsyncMeta {
    request_id: String,
    headers: crate::operation::Headers,
    deadline: Option<Instant>,
    callback: Option<Callback>,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn take_links(links: &Mutex<Vec<Link>>) -> Vec<Link> {
    std::mem::take(&mut *links.lock().unwrap_or_else(|e| e.into_inner()))
}

fn quoted_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
