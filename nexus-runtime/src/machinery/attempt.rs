//! One attempt: a start or cancel request sent through a transport, bounded by its request
//! deadline. It is the innermost tower [`Service`] of an endpoint's stack.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::Service;

use super::deadline;
use crate::error::{CallError, HandlerError, TimeoutKind};
use crate::transport::{CancelRequest, StartRequest, StartResponse, Transport};

/// What an attempt sends.
#[derive(Debug)]
pub(crate) enum AttemptCall {
    /// A start request.
    Start(StartRequest),
    /// A cancel request.
    Cancel(CancelRequest),
}

/// An attempt, ready to go through an endpoint's limits.
pub(crate) struct AttemptRequest {
    /// The target's transport.
    pub transport: Arc<dyn Transport>,
    /// The request.
    pub call: AttemptCall,
    /// The per-attempt timeout, counted from when the attempt leaves the endpoint's queue.
    pub timeout: Duration,
    /// The operation's own deadline: the attempt never outlives it.
    pub cap: Option<Instant>,
    /// When the handler's operation must be done, sent as `Operation-Timeout` with a start.
    pub operation_deadline: Option<Instant>,
}

/// What an attempt got back.
#[derive(Debug)]
pub(crate) enum AttemptResponse {
    /// The answer to a start request.
    Started(StartResponse),
    /// The handler acknowledged a cancel request.
    CancelRequested,
}

/// Why an attempt produced no answer.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// The attempt was made and failed (the handler's answer, a transport failure, a timeout).
    Call(CallError),
    /// The endpoint's local queue was full: the attempt was never made.
    Overloaded(HandlerError),
}

/// Makes attempts: sets the request deadline when the attempt actually goes out, sends it, and
/// gives up at that deadline with a `request` timeout, whatever the transport does.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AttemptService;

impl Service<AttemptRequest> for AttemptService {
    type Response = AttemptResponse;
    type Error = AttemptError;
    type Future = BoxFuture<'static, Result<AttemptResponse, AttemptError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: AttemptRequest) -> Self::Future {
        let now = Instant::now();
        let deadline = deadline::min(Some(now + request.timeout), request.cap).unwrap_or(now);
        let AttemptRequest {
            transport,
            call,
            operation_deadline,
            ..
        } = request;
        // One boxed future for the whole attempt (the transport boxes its own).
        async move {
            let sent = async {
                match call {
                    AttemptCall::Start(mut start) => {
                        start.request_deadline = Some(deadline);
                        start.operation_timeout =
                            operation_deadline.map(|d| d.saturating_duration_since(now));
                        transport.start(start).await.map(AttemptResponse::Started)
                    }
                    AttemptCall::Cancel(mut cancel) => {
                        cancel.request_deadline = Some(deadline);
                        transport
                            .cancel(cancel)
                            .await
                            .map(|()| AttemptResponse::CancelRequested)
                    }
                }
            };
            match tokio::time::timeout_at(deadline, sent).await {
                Ok(result) => result.map_err(AttemptError::Call),
                Err(_) => Err(AttemptError::Call(CallError::Timeout {
                    kind: TimeoutKind::Request,
                    last_failure: None,
                })),
            }
        }
        .boxed()
    }
}
