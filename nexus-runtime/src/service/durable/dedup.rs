//! Starts with a store: the first request with a request id runs the handler, every retry gets
//! the recorded answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Durable, store_failure};
use crate::clock;
use crate::codec::Content;
use crate::completion::Callback;
use crate::error::{HandlerError, OperationError, StartError};
use crate::operation::AsyncOperation;
use crate::security::Principal;
use crate::service::dispatcher::Dispatcher;
use crate::service::handler::{RawStart, ServiceHandler};
use crate::service::invoke::{
    elsewhere_token, invocation, invoke, operation_deadline, restore, unknown_operation,
};
use crate::service::work::Launch;
use crate::store::{
    AsyncOperationRecord, AsyncState, BeginStart, HandlerStore, StartAnswer, StartClaim, StartKey,
    StoreError, StoredCallback,
};
use crate::transport::{StartRequest, StartResponse};

/// The request id under which a start without one records its async operation (never matched by
/// another request: such starts are not deduplicated).
const NO_REQUEST_ID: &str = "nexus:no-request-id:";

/// How long a claim outlives the request deadline.
const CLAIM_MARGIN: Duration = Duration::from_secs(1);

/// A start with a store (see [`DispatcherBuilder::store`](crate::service::DispatcherBuilder::store)),
/// deduplicated within `principal`'s own request ids.
pub(crate) async fn start(
    dispatcher: &Dispatcher,
    durable: &Arc<Durable>,
    handler: &Arc<dyn ServiceHandler>,
    principal: &Principal,
    mut request: StartRequest,
) -> Result<StartResponse, StartError> {
    if durable.is_stopped() {
        return Err(HandlerError::unavailable("the handler is shutting down").into());
    }
    let operation_deadline = operation_deadline(&request)?;
    let mut claim = None;
    if !request.request_id.is_empty() {
        // No claim for an operation that is not served. (Without a request id, nothing is
        // recorded before the method answers, and `invoke` answers an unknown operation
        // NOT_FOUND as it does.)
        if !dispatcher
            .inner
            .names
            .hosts(&request.service, &request.operation)
        {
            let error = unknown_operation(&request.service, &request.operation);
            return Err(error.into());
        }
        let claim_until = claim_until(durable, request.request_deadline);
        // Boxed, as every await on a claim below, so that a start without a request id (no
        // claim) is awaited in place by the dispatcher and allocates nothing for the claim's
        // states. (Each boxed future is bound first: a temporary of the awaiting statement
        // would take room in this future's state.)
        let claiming = Box::pin(claim_start(durable, principal, &request, claim_until));
        match claiming.await? {
            Claiming::Claimed(claimed) => claim = Some(claimed),
            Claiming::Answered(answer) => return replay(answer),
        }
    }
    // Kept for the operation record, should the answer be resumable async work.
    let input = request.input.clone();
    let invocation = invocation(&mut request, principal, operation_deadline);
    let answered = match invoke(handler, invocation, dispatcher.payload_codec()).await {
        Ok(answered) => answered,
        Err(error) => {
            if let Some(claim) = claim {
                if is_final(&error) {
                    let answer = StartAnswer::Failed(error.to_failure());
                    let recording = Box::pin(claim.record(&answer, None));
                    recording.await;
                } else {
                    let abandoning = Box::pin(claim.abandon());
                    abandoning.await;
                }
            }
            return Err(error);
        }
    };
    let op = match answered.raw {
        RawStart::Sync(output) => {
            let answer = StartAnswer::Sync {
                output,
                links: answered.links,
            };
            return match claim {
                None => replay(answer),
                Some(claim) => {
                    let recording = Box::pin(claim.record(&answer, None));
                    match recording.await {
                        Recorded::Yes => replay(answer),
                        Recorded::Replay(stored) => replay(stored),
                        Recorded::Refused(e) => Err(e.into()),
                    }
                }
            };
        }
        // Nothing runs here and nothing is recorded: a retry runs the method again, and
        // whatever completes the operation deduplicates its own starts.
        RawStart::Async(op) if op.elsewhere => {
            if let Some(claim) = claim {
                let abandoning = Box::pin(claim.abandon());
                abandoning.await;
            }
            return Ok(StartResponse::Async {
                token: elsewhere_token(&op)?,
                links: answered.links,
            });
        }
        RawStart::Async(op) => op,
    };
    // The request's parts, back for the operation's record.
    restore(&mut request, answered.parts);
    // Recording the operation and launching its work must not stop halfway when the request
    // goes away (its future dropped): that would leave a recorded operation with no work.
    let this = dispatcher.clone();
    let request_deadline = request.request_deadline;
    let pending = PendingAsync {
        op,
        principal: principal.clone(),
        claim,
        request,
        input,
        links: answered.links,
        operation_deadline,
        claim_until: claim_until(durable, request_deadline),
    };
    let launched = spawn_launch(this, durable.clone(), pending);
    launched.await.unwrap_or_else(|e| {
        Err(HandlerError::internal(format!("recording the operation failed: {e}")).into())
    })
}

/// Until when a start's claim on its request id holds (the request's own deadline, with a
/// margin, or the store's default): read from the clock only by a start that claims its id or
/// records an operation.
fn claim_until(durable: &Durable, request_deadline: Option<Instant>) -> SystemTime {
    match request_deadline {
        Some(deadline) => clock::system_at(deadline) + CLAIM_MARGIN,
        None => clock::now() + durable.options.start_claim,
    }
}

/// Records and launches `pending` in a task of its own (see [`launch_recorded`]). A function of
/// its own, not an async block in [`start`]: the block would take room in `start`'s state.
fn spawn_launch(
    dispatcher: Dispatcher,
    durable: Arc<Durable>,
    pending: PendingAsync,
) -> tokio::task::JoinHandle<Result<StartResponse, StartError>> {
    tokio::spawn(async move { launch_recorded(&dispatcher, &durable, pending).await })
}

/// What claiming a start's request id gave: the claim, or the answer recorded for the id.
enum Claiming {
    Claimed(Claim),
    Answered(StartAnswer),
}

/// Claims the request id of `request` for `principal` until `claim_until`; the answer recorded
/// for it when an earlier request with the same id was answered (its callback retargeted to
/// this request's), or IN_PROGRESS (retryable) while that one is still running.
async fn claim_start(
    durable: &Arc<Durable>,
    principal: &Principal,
    request: &StartRequest,
    claim_until: SystemTime,
) -> Result<Claiming, StartError> {
    let key = StartKey {
        principal: principal.name().to_owned(),
        service: request.service.clone(),
        operation: request.operation.clone(),
        request_id: request.request_id.clone(),
    };
    match durable
        .handler
        .begin_start(&key, clock::now(), claim_until)
        .await
        .map_err(|e| store_failure("cannot record the start request", &e))?
    {
        BeginStart::Answered(answer) => {
            // The caller may listen elsewhere now (restarted, or another replica).
            if let StartAnswer::Async { token, .. } = &answer {
                durable.retarget(token, request.callback.as_ref()).await?;
            }
            Ok(Claiming::Answered(answer))
        }
        BeginStart::InFlight { .. } => Err(in_progress(request).into()),
        BeginStart::Claimed(c) => Ok(Claiming::Claimed(Claim::new(durable, key, c, claim_until))),
    }
}

/// Reserves the token of an async answer, records the operation with the answer, and
/// launches its work.
async fn launch_recorded(
    dispatcher: &Dispatcher,
    durable: &Arc<Durable>,
    pending: PendingAsync,
) -> Result<StartResponse, StartError> {
    let PendingAsync {
        op,
        principal,
        claim,
        request,
        input,
        links,
        operation_deadline,
        claim_until,
    } = pending;
    let reserved = dispatcher.reserve(
        &op,
        &request.service,
        &request.operation,
        &principal,
        input.data.len(),
    );
    let reserved = match reserved {
        Ok(reserved) => reserved,
        Err(e) => {
            if let Some(claim) = claim {
                claim.abandon().await;
            }
            return Err(e.into());
        }
    };
    let token = reserved.token.to_string();
    let now = clock::now();
    let record = AsyncOperationRecord {
        token: token.clone(),
        service: request.service.clone(),
        operation: request.operation.clone(),
        request_id: request.request_id.clone(),
        principal: principal.clone(),
        input: if op.resumable {
            input
        } else {
            Content::empty()
        },
        headers: request.headers.clone(),
        links: request.links.clone(),
        callback: match &request.callback {
            Some(Callback::Url { url, headers }) => Some(StoredCallback {
                url: url.clone(),
                headers: headers.clone(),
            }),
            Some(Callback::Local(_)) | None => None,
        },
        state: AsyncState::Running,
        resumable: op.resumable,
        cancel_requested_at: None,
        deadline: operation_deadline.map(clock::system_at),
        started_at: now,
        closed_at: None,
        lease: Some(durable.lease(now)),
    };
    let answer = StartAnswer::Async {
        token: token.clone(),
        links,
    };
    let recorded = match claim {
        Some(claim) => claim.record(&answer, Some(&record)).await,
        None => record_without_request_id(durable, &record, &answer, claim_until).await,
    };
    match recorded {
        Recorded::Yes => {}
        Recorded::Replay(stored) => {
            dispatcher.inner.running.remove(&token);
            return replay(stored);
        }
        Recorded::Refused(e) => {
            dispatcher.inner.running.remove(&token);
            return Err(e.into());
        }
    }
    dispatcher.spawn_work(
        op,
        Launch {
            reserved,
            request_id: request.request_id,
            principal,
            headers: request.headers,
            deadline: operation_deadline,
            callback: request.callback,
            resumed: false,
            start_time: now,
        },
    );
    replay(answer)
}

/// An async answer waiting to be recorded and launched.
struct PendingAsync {
    op: AsyncOperation<Content>,
    principal: Principal,
    claim: Option<Claim>,
    request: StartRequest,
    /// The start's input, recorded if the work is resumable.
    input: Content,
    links: Vec<crate::link::Link>,
    operation_deadline: Option<Instant>,
    claim_until: SystemTime,
}

/// Records the async operation of a start without a request id, under a key of its own.
async fn record_without_request_id(
    durable: &Arc<Durable>,
    record: &AsyncOperationRecord,
    answer: &StartAnswer,
    claim_until: SystemTime,
) -> Recorded {
    let key = StartKey {
        principal: record.principal.name().to_owned(),
        service: record.service.clone(),
        operation: record.operation.clone(),
        request_id: format!("{NO_REQUEST_ID}{}", record.token),
    };
    match durable
        .handler
        .begin_start(&key, clock::now(), claim_until)
        .await
    {
        Ok(BeginStart::Claimed(c)) => {
            Claim::new(durable, key, c, claim_until)
                .record(answer, Some(record))
                .await
        }
        Ok(_) => Recorded::Refused(HandlerError::conflict(format!(
            "an operation with token `{}` was recorded already",
            record.token
        ))),
        Err(e) => Recorded::Refused(store_failure("cannot record the operation", &e)),
    }
}

/// Whether a start error is the answer for good (recorded), rather than a failure the retry
/// should run the handler again for.
fn is_final(error: &StartError) -> bool {
    match error {
        StartError::Operation(_) => true,
        StartError::Handler(e) => !e.is_retryable(),
    }
}

fn in_progress(request: &StartRequest) -> HandlerError {
    HandlerError::unavailable(format!(
        "a start of `{}/{}` with request id `{}` is in progress; retry later",
        request.service, request.operation, request.request_id
    ))
}

/// The answer a request gets: the one just given, or the one recorded for its request id.
fn replay(answer: StartAnswer) -> Result<StartResponse, StartError> {
    match answer {
        StartAnswer::Sync { output, links } => Ok(StartResponse::Sync { output, links }),
        StartAnswer::Async { token, links } => Ok(StartResponse::Async { token, links }),
        StartAnswer::Failed(failure) => {
            Err(if let Some(e) = OperationError::from_failure(&failure) {
                e.into()
            } else if let Some(e) = HandlerError::from_failure(&failure) {
                e.into()
            } else {
                HandlerError::internal(format!(
                    "the recorded answer to this request is not a Nexus error: {}",
                    failure.message
                ))
                .with_retryable(false)
                .into()
            })
        }
    }
}

/// What became of an answer the handler gave.
enum Recorded {
    /// It is the recorded answer.
    Yes,
    /// Another request with the same id was answered meanwhile: this is its answer.
    Replay(StartAnswer),
    /// It could not be recorded: answer this (retryable) error instead.
    Refused(HandlerError),
}

/// The right to run the handler for one request id. Dropped unused (the request went away), it
/// is abandoned in the background so that a retry runs the handler again.
struct Claim {
    store: Arc<dyn HandlerStore>,
    key: StartKey,
    claim: StartClaim,
    until: SystemTime,
    armed: bool,
}

impl Claim {
    fn new(durable: &Durable, key: StartKey, claim: StartClaim, until: SystemTime) -> Self {
        Self {
            store: durable.handler.clone(),
            key,
            claim,
            until,
            armed: true,
        }
    }

    /// Records `answer` (and the operation of an async one). If the claim expired and another
    /// request took it, that request's answer wins when it has one. An answer that cannot be
    /// recorded is logged (a warning): the method ran, and the retry runs it again.
    async fn record(
        self,
        answer: &StartAnswer,
        operation: Option<&AsyncOperationRecord>,
    ) -> Recorded {
        let request_id = self.key.request_id.clone();
        let recorded = self.try_record(answer, operation).await;
        if let Recorded::Refused(e) = &recorded {
            tracing::warn!(
                %request_id,
                error = %e,
                "the answer to a start request could not be recorded; its retry runs the \
                 operation again"
            );
        }
        recorded
    }

    async fn try_record(
        mut self,
        answer: &StartAnswer,
        operation: Option<&AsyncOperationRecord>,
    ) -> Recorded {
        for _ in 0..2 {
            let now = clock::now();
            let finished = self
                .store
                .finish_start(&self.key, &self.claim, answer, operation, now)
                .await;
            match finished {
                Ok(true) => {
                    self.armed = false;
                    return Recorded::Yes;
                }
                Ok(false) => {}
                Err(StoreError::Duplicate(what)) => {
                    self.abandon().await;
                    return Recorded::Refused(HandlerError::conflict(what));
                }
                Err(e) => {
                    self.abandon().await;
                    return Recorded::Refused(store_failure("cannot record the answer", &e));
                }
            }
            // The claim expired and another request took it over: see where it is.
            tracing::warn!(request_id = %self.key.request_id, "lost the claim on a start request");
            let until = self.until.max(now + CLAIM_MARGIN);
            match self.store.begin_start(&self.key, now, until).await {
                Ok(BeginStart::Claimed(claim)) => self.claim = claim,
                Ok(BeginStart::Answered(stored)) => {
                    self.armed = false;
                    return Recorded::Replay(stored);
                }
                Ok(BeginStart::InFlight { .. }) => {
                    self.armed = false;
                    return Recorded::Refused(HandlerError::unavailable(format!(
                        "a retry of the start with request id `{}` is in progress",
                        self.key.request_id
                    )));
                }
                Err(e) => {
                    self.armed = false;
                    return Recorded::Refused(store_failure("cannot record the answer", &e));
                }
            }
        }
        self.abandon().await;
        Recorded::Refused(HandlerError::unavailable(
            "the start request's claim keeps expiring; retry later",
        ))
    }

    /// Gives the request id up, so that a retry runs the handler again.
    async fn abandon(mut self) {
        self.armed = false;
        if let Err(e) = self.store.abandon_start(&self.key, &self.claim).await {
            tracing::warn!(
                request_id = %self.key.request_id,
                error = %e,
                "cannot abandon the claim on a start request; a retry runs once it expires"
            );
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key, claim) = (self.store.clone(), self.key.clone(), self.claim.clone());
        runtime.spawn(async move {
            if let Err(e) = store.abandon_start(&key, &claim).await {
                tracing::warn!(request_id = %key.request_id, error = %e, "cannot abandon a claim");
            }
        });
    }
}
