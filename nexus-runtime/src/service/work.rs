//! The work of async operations: reserving a token, running the work in the background, and
//! routing its completion (to the store's outbox, or straight to the caller).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::FutureExt as _;
use futures::future::Either;
use tokio::time::Instant;
use tokio_util::future::FutureExt as _;
use tokio_util::sync::CancellationToken;

use super::dispatcher::Dispatcher;
use super::invoke::{panic_message, take_links};
use super::running::RunningOperation;
use crate::codec::details::encode_details;
use crate::codec::{Content, PayloadCodec};
use crate::completion::{Callback, Completion};
use crate::error::{HandlerError, OperationError};
use crate::observe::spans::InSpan as _;
use crate::observe::{self, TraceContext, spans};
use crate::operation::{
    AsyncContext, AsyncOperation, CallScope, Headers, OperationNames, PackedHeaders,
};
use crate::security::Principal;
use crate::store::CompleteAsync;

/// An async operation's place in the running table: its token, its names and the signal of its
/// cancellation, which its context and task share with the table.
pub(crate) struct Reserved {
    pub token: Arc<str>,
    pub names: Arc<OperationNames>,
    /// Signals cancellation requests to the work.
    pub cancel: CancellationToken,
}

impl Reserved {
    /// A new reservation of `token` for `service`/`operation` (its names the dispatcher's).
    pub fn new(dispatcher: &Dispatcher, token: Arc<str>, service: &str, operation: &str) -> Self {
        Self {
            token,
            names: dispatcher.inner.names.get(service, operation),
            cancel: CancellationToken::new(),
        }
    }

    /// Its entry in the running table: started by `principal`, with `input_bytes` of input.
    pub fn running(&self, principal: &Principal, input_bytes: usize) -> RunningOperation {
        RunningOperation {
            names: self.names.clone(),
            principal: principal.clone(),
            input_bytes: u64::try_from(input_bytes).unwrap_or(u64::MAX),
            cancel: self.cancel.clone(),
        }
    }
}

/// An async operation whose token is reserved in the running table, ready to run.
pub(crate) struct Launch {
    pub reserved: Reserved,
    pub request_id: String,
    pub principal: Principal,
    pub headers: Headers,
    /// The operation deadline.
    pub deadline: Option<Instant>,
    pub callback: Option<Callback>,
    pub resumed: bool,
    pub start_time: SystemTime,
}

/// A token that is valid on the wire: non-empty, no control characters.
pub(crate) fn check_token(token: &str) -> Result<(), HandlerError> {
    if token.is_empty() || token.bytes().any(|b| b.is_ascii_control()) {
        return Err(HandlerError::internal(
            "the handler chose an operation token that is empty or not valid in a header",
        ));
    }
    Ok(())
}

/// An async operation's outcome through the payload codec; one that cannot be encoded fails the
/// operation, saying why.
fn encode_outcome(
    payload_codec: &dyn PayloadCodec,
    outcome: Result<Content, OperationError>,
    operation: &str,
) -> Result<Content, OperationError> {
    match outcome {
        Ok(result) => payload_codec.encode(result).map_err(|e| {
            OperationError::failed(format!("cannot encode the result of `{operation}`: {e}"))
        }),
        Err(mut error) => match encode_details(payload_codec, &mut error) {
            Ok(()) => Err(error),
            Err(e) => Err(OperationError::new(
                error.state,
                format!("cannot encode the failure details of `{operation}`: {e}"),
            )),
        },
    }
}

/// Picks the token of `op` (the handler's or a fresh one) and reserves it in the running
/// table for `principal`, so that cancel requests find it and recovery leaves it alone:
/// RESOURCE_EXHAUSTED if the principal's quota is used up (the work then never runs).
pub(crate) fn reserve(
    dispatcher: &Dispatcher,
    op: &AsyncOperation<Content>,
    service: &str,
    operation: &str,
    principal: &Principal,
    input_bytes: usize,
) -> Result<Reserved, HandlerError> {
    let token: Arc<str> = match &op.token {
        Some(token) => token.as_str().into(),
        None => crate::id::new_v7().simple().to_string().into(),
    };
    check_token(&token)?;
    let reserved = Reserved::new(dispatcher, token, service, operation);
    dispatcher.inner.running.insert_within(
        reserved.token.clone(),
        reserved.running(principal, input_bytes),
        &dispatcher.inner.quota,
    )?;
    Ok(reserved)
}

/// Runs the work of a reserved operation in the background and routes its completion.
pub(crate) fn spawn(dispatcher: &Dispatcher, op: AsyncOperation<Content>, launch: Launch) {
    let links = Arc::new(Mutex::new(Vec::new()));
    let Reserved {
        token,
        names,
        cancel,
    } = launch.reserved;
    let span = spans::work(&names.service, &names.operation, &token, launch.resumed);
    // A resumed operation has no handler span around it: its parent is the caller's context.
    let trace = if tracing::Span::current().is_none() {
        observe::extract(&span, &launch.headers)
    } else {
        TraceContext::from_headers(&launch.headers)
    };
    let ctx = AsyncContext {
        token: token.clone(),
        names: names.clone(),
        request_id: launch.request_id,
        principal: launch.principal,
        headers: PackedHeaders::new(&launch.headers),
        deadline: launch.deadline,
        cancel: cancel.clone(),
        links: links.clone(),
        resumed: launch.resumed,
    };
    let scope = CallScope {
        deadline: launch.deadline,
        cancel,
    };
    let work = (op.work)(ctx);
    let dispatcher = dispatcher.clone();
    let stop = dispatcher.inner.durable.as_ref().map(|d| d.stop.clone());
    let (callback, start_time) = (launch.callback, launch.start_time);
    // The task is the work's future, then the future that completes it: as a chain of
    // combinators the first is never moved (an async block would keep it twice, as its capture
    // and as the future it awaits), and the second takes its room once the first is done. Most of
    // an operation's life is the first.
    let run = AssertUnwindSafe(observe::scope(trace, scope.run(work))).catch_unwind();
    // A stopped dispatcher drops its work without completing it: the store keeps the operation
    // running, for the next dispatcher to resume or fail. (Work that ends as the stop comes is
    // completed.)
    let run = match stop {
        Some(stop) => Either::Left(run.with_cancellation_token_owned(stop)),
        None => Either::Right(run.map(Some)),
    };
    let task = run.then(move |outcome| async move {
        let Some(outcome) = outcome else {
            return;
        };
        let mut outcome = outcome.unwrap_or_else(|panic| {
            Err(OperationError::failed(format!(
                "handler of `{}` panicked: {}",
                names.operation,
                panic_message(&*panic)
            )))
        });
        // The one place async results (and the details of async operation errors) go
        // through the payload codec, before they are recorded or delivered.
        if let Some(payload_codec) = dispatcher.payload_codec() {
            outcome = encode_outcome(payload_codec.as_ref(), outcome, &names.operation);
        }
        spans::record(
            &tracing::Span::current(),
            "nexus.state",
            match &outcome {
                Ok(_) => "succeeded",
                Err(e) => e.state.as_str(),
            },
        );
        let completion = Completion {
            token: token.to_string(),
            outcome,
            links: take_links(&links),
            start_time: Some(start_time),
            close_time: Some(crate::clock::now()),
        };
        // Boxed: the completion's recording and delivery (an HTTP request) are only needed
        // at the end, and would otherwise enlarge the task of every running operation for
        // its whole life.
        Box::pin(finish(&dispatcher, callback, completion)).await;
    });
    tokio::spawn(task.in_span(span));
}

/// Completes an async operation: with a store, records the completion (which enqueues its
/// delivery to a callback URL) before anything else; then hands it to an in-process caller,
/// or (without a store) sends it to the callback.
pub(crate) async fn finish(
    dispatcher: &Dispatcher,
    callback: Option<Callback>,
    completion: Completion,
) {
    let token = completion.token.clone();
    match &dispatcher.inner.durable {
        None => {
            dispatcher.inner.running.remove(&token);
            return deliver(dispatcher, callback, completion).await;
        }
        Some(durable) => match durable.record_completion(&completion).await {
            Some(CompleteAsync::Applied { delivery: Some(_) }) => {
                durable.wake_outbox.notify_one();
            }
            Some(CompleteAsync::Applied { delivery: None }) => {
                if let Some(Callback::Local(_)) = &callback {
                    deliver(dispatcher, callback, completion).await;
                }
            }
            Some(CompleteAsync::AlreadyFinished(state)) => {
                tracing::info!(%token, %state, "the operation was finished elsewhere");
            }
            Some(CompleteAsync::UnknownOperation) => {
                tracing::warn!(%token, "the store has no record of this operation");
                deliver(dispatcher, callback, completion).await;
            }
            // Stopped, or the store refused: not completed (and not delivered) here.
            None => return,
        },
    }
    // Removed only now, so that recovery never mistakes a finishing operation for an
    // abandoned one.
    dispatcher.inner.running.remove(&token);
}

/// Delivers a completion directly: to an in-process sink, or with the completion sender.
async fn deliver(dispatcher: &Dispatcher, callback: Option<Callback>, completion: Completion) {
    let token = completion.token.clone();
    let result = match callback {
        None => {
            tracing::warn!(%token, "async operation finished but the caller gave no callback");
            return;
        }
        Some(Callback::Local(sink)) => sink.complete(completion).await,
        Some(Callback::Url { url, headers }) => match dispatcher.completion_sender() {
            Some(sender) => sender.send(url, headers, completion).await,
            None => Err(HandlerError::internal(
                "no completion sender is configured for URL callbacks",
            )),
        },
    };
    match result {
        Ok(()) => tracing::debug!(%token, "completion delivered"),
        Err(e) => tracing::warn!(%token, error = %e, "completion not delivered"),
    }
}
