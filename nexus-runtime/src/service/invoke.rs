//! Running an operation method once: context, call scope, request deadline and panics.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use tokio::time::Instant;

use super::handler::{RawStart, ServiceHandler};
use crate::codec::details::encode_details;
use crate::codec::{Content, PayloadCodec};
use crate::error::{HandlerError, StartError};
use crate::link::Link;
use crate::operation::{
    AsyncOperation, ContextParts, OperationContext, RequestCancel, run_request,
};
use crate::protocol::{self, header};
use crate::security::Principal;
use crate::transport::StartRequest;

/// What a start request gives the operation method, besides its input.
pub(crate) struct Invocation {
    /// The context's parts; their `cancel` is the request's own signal (a new one, shared with
    /// nothing else), which [`invoke`] fires when its future finishes or is dropped.
    pub parts: ContextParts,
    pub input: Content,
    /// When the caller stops waiting: the method's future is dropped then, answered
    /// UPSTREAM_TIMEOUT.
    pub request_deadline: Option<Instant>,
}

/// The method's answer, the links it added to the response, and the request's parts back.
pub(crate) struct Answered {
    pub raw: RawStart,
    pub links: Vec<Link>,
    /// The parts the method's context was made of, given back (moved out of the context when the
    /// method let it go, as it usually does; copied otherwise).
    pub parts: ContextParts,
}

/// Runs the operation `invocation.parts` names on `handler` once. A panic is INTERNAL, a missed
/// request deadline UPSTREAM_TIMEOUT (both retryable); an unknown operation is NOT_FOUND. Dropping the returned future signals the method's context that the caller went
/// away.
///
/// The parts are moved into the context, which the method holds, and given back with the answer:
/// the request's names, id, headers and links are not copied on the way.
///
/// This is the one place the dispatcher's payload codec decodes inputs (BAD_REQUEST naming the
/// problem when it cannot) and encodes sync outputs and the details of sync operation errors
/// (INTERNAL when it cannot), for every start: direct, deduplicated and resumed.
pub(crate) async fn invoke(
    handler: &Arc<dyn ServiceHandler>,
    invocation: Invocation,
    payload_codec: Option<&Arc<dyn PayloadCodec>>,
) -> Result<Answered, StartError> {
    let Invocation {
        parts,
        mut input,
        request_deadline,
    } = invocation;
    if let Some(payload_codec) = payload_codec {
        let operation = parts.operation.as_str();
        if !handler.operation_names().contains(&operation) {
            return Err(unknown_operation(&parts.service, operation).into());
        }
        input = payload_codec.decode(input).map_err(|e| {
            HandlerError::bad_request(format!(
                "cannot decode the input of operation `{operation}`: {e}"
            ))
        })?;
    }
    let deadline = earliest(parts.deadline, parts.operation_deadline);
    let parts = Arc::new(parts);
    // Ends the request's cancellation signal when this future is dropped (the caller went
    // away) or finishes.
    let ending = EndOnDrop(parts.clone());
    let ctx = OperationContext::new(parts.clone());
    let (service, operation) = (parts.service.as_str(), parts.operation.as_str());
    let Some(start) = handler.start(operation, ctx, input) else {
        return Err(unknown_operation(service, operation).into());
    };
    let guarded = AssertUnwindSafe(run_request(deadline, parts.clone(), start)).catch_unwind();
    let outcome = match request_deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, guarded)
            .await
            .map_err(|_| {
                HandlerError::upstream_timeout(format!(
                    "operation `{operation}` did not answer before the request deadline"
                ))
            })?,
        None => guarded.await,
    };
    let raw = outcome.map_err(|panic| {
        tracing::error!(
            %service,
            %operation,
            "handler panicked: {}",
            panic_message(&*panic)
        );
        HandlerError::internal(format!(
            "handler of `{operation}` panicked: {}",
            panic_message(&*panic)
        ))
    })?;
    let raw = match (raw, payload_codec) {
        (raw, None) => raw?,
        (Ok(RawStart::Sync(output)), Some(payload_codec)) => {
            RawStart::Sync(payload_codec.encode(output).map_err(|e| {
                HandlerError::internal(format!("cannot encode the output of `{operation}`: {e}"))
            })?)
        }
        (Err(StartError::Operation(mut error)), Some(payload_codec)) => {
            encode_details(payload_codec.as_ref(), &mut error).map_err(|e| {
                HandlerError::internal(format!(
                    "cannot encode the failure details of `{operation}`: {e}"
                ))
            })?;
            return Err(error.into());
        }
        (raw, Some(_)) => raw?,
    };
    let links = take_links(&parts.response_links);
    drop(ending);
    Ok(Answered {
        raw,
        links,
        parts: take_parts(parts),
    })
}

/// Ends the request's cancellation signal when dropped.
struct EndOnDrop(Arc<ContextParts>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.cancel.end();
    }
}

/// The parts behind `parts`: moved out when nothing else holds them, copied otherwise (a handler
/// that kept its context, or a clone of it, beyond its answer). The request has ended by then:
/// a copy's cancellation signal has fired.
fn take_parts(parts: Arc<ContextParts>) -> ContextParts {
    Arc::try_unwrap(parts).unwrap_or_else(|shared| ContextParts {
        service: shared.service.clone(),
        operation: shared.operation.clone(),
        request_id: shared.request_id.clone(),
        principal: shared.principal.clone(),
        headers: shared.headers.clone(),
        links: shared.links.clone(),
        deadline: shared.deadline,
        operation_deadline: shared.operation_deadline,
        cancel: RequestCancel::ended(),
        has_callback: shared.has_callback,
        resumed: shared.resumed,
        response_links: Mutex::default(),
    })
}

/// NOT_FOUND for an operation the service does not have (without listing those it has: a caller
/// learns only about what it asked for).
pub(crate) fn unknown_operation(service: &str, operation: &str) -> HandlerError {
    HandlerError::not_found(format!(
        "service `{service}` has no operation `{operation}`"
    ))
}

pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(crate) fn take_links(links: &Mutex<Vec<Link>>) -> Vec<Link> {
    std::mem::take(&mut *links.lock().unwrap_or_else(|e| e.into_inner()))
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
            cancel: RequestCancel::default(),
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
