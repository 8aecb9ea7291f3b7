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
            // An expired attempt is always a `request` timeout: a transport that enforces the
            // same deadline with a timer of its own (the HTTP transport does) fires in the same
            // timer tick, and must not win with an error of its own shape; so an answer that
            // comes at or after the deadline counts as the timeout too. The attempt is polled
            // before the timer is: an answer ready at once (in-process) registers no timer,
            // whose registration costs a wake-up of the runtime's driver (a system call).
            let mut sent = std::pin::pin!(sent);
            let mut timer = None;
            let timed_out = || {
                Err(AttemptError::Call(CallError::Timeout {
                    kind: TimeoutKind::Request,
                    last_failure: None,
                }))
            };
            std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = sent.as_mut().poll(cx) {
                    if Instant::now() >= deadline {
                        return Poll::Ready(timed_out());
                    }
                    return Poll::Ready(result.map_err(AttemptError::Call));
                }
                let timer =
                    timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(timed_out()),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Content;
    use crate::error::{TransportError, TransportErrorKind};
    use crate::transport::CancelRequest;

    /// Enforces the request deadline with a timer of its own, as the HTTP transport does, and
    /// reports its expiry in its own shape.
    struct OwnTimer;

    impl Transport for OwnTimer {
        fn start(
            &self,
            request: StartRequest,
        ) -> BoxFuture<'static, Result<StartResponse, CallError>> {
            let deadline = request.request_deadline.expect("a request deadline");
            async move {
                tokio::time::sleep_until(deadline).await;
                Err(CallError::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    "operation timed out",
                )))
            }
            .boxed()
        }

        fn cancel(&self, _request: CancelRequest) -> BoxFuture<'static, Result<(), CallError>> {
            std::future::pending().boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_attempt_is_a_request_timeout_whatever_the_transport_reports() {
        let request = AttemptRequest {
            transport: Arc::new(OwnTimer),
            call: AttemptCall::Start(StartRequest {
                service: "s".into(),
                operation: "o".into(),
                request_id: "r".into(),
                headers: Default::default(),
                links: vec![],
                callback: None,
                request_deadline: None,
                operation_timeout: None,
                input: Content::empty(),
            }),
            timeout: Duration::from_millis(300),
            cap: None,
            operation_deadline: None,
        };
        let start = Instant::now();
        let error = AttemptService
            .call(request)
            .await
            .expect_err("the attempt expires");
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert!(
            matches!(
                error,
                AttemptError::Call(CallError::Timeout {
                    kind: TimeoutKind::Request,
                    last_failure: None
                })
            ),
            "{error:?}"
        );
    }
}
