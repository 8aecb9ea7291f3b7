//! One Nexus task: its start or cancel request as the dispatcher's call, and the dispatcher's
//! answer as what the worker responds.

use std::sync::Arc;

use temporalio_client::Connection;
use temporalio_common::protos::temporal::api::nexus::v1::{
    self as nexus, CancelOperationResponse, StartOperationResponse, request, response,
    start_operation_response,
};
use tokio::time::Instant;

use super::convert::{
    callback_headers, content_to_payload, legacy_operation_error, links_from_nexus, links_to_nexus,
    lower_headers, operation_error_to_temporal, parse_go_duration, payload_to_content,
};
use super::workflow_run::{TaskScope, WorkflowRunToken, cancel_workflow};
use crate::completion::Callback;
use crate::error::{HandlerError, StartError};
use crate::operation::Headers;
use crate::security::Principal;
use crate::service::Dispatcher;
use crate::transport::{CancelRequest, StartRequest, StartResponse};

/// The callback URL Temporal gives tasks of workflow callers: completions are routed inside the
/// cluster by their `Temporal-Callback-Token` header.
pub const SYSTEM_CALLBACK_URL: &str = "temporal://system";

/// Everything a task needs from its worker.
pub(crate) struct TaskContext {
    pub dispatcher: Dispatcher,
    pub principal: Principal,
    pub connection: Connection,
    pub namespace: String,
    pub task_queue: String,
    pub identity: String,
    /// Where completions of `temporal://system` callbacks are sent (the server's Nexus callback
    /// URL), if configured.
    pub system_callback_url: Option<String>,
}

/// What the worker answers a task with.
#[derive(Debug)]
pub(crate) enum Answer {
    /// `RespondNexusTaskCompleted` with this response.
    Completed(Box<nexus::Response>),
    /// `RespondNexusTaskFailed` with this handler error.
    Failed(HandlerError),
}

/// Handles one task's request.
pub(crate) async fn handle(ctx: &TaskContext, request: nexus::Request, new_format: bool) -> Answer {
    let headers = lower_headers(request.header);
    let result = match request.variant {
        Some(request::Variant::StartOperation(start)) => {
            start_operation(ctx, start, headers, new_format)
                .await
                .map(response::Variant::StartOperation)
        }
        Some(request::Variant::CancelOperation(cancel)) => cancel_operation(ctx, cancel, headers)
            .await
            .map(|()| response::Variant::CancelOperation(CancelOperationResponse::default())),
        None => Err(HandlerError::not_implemented(
            "the Nexus task carries neither a start nor a cancel request",
        )),
    };
    match result {
        Ok(variant) => Answer::Completed(Box::new(nexus::Response {
            variant: Some(variant),
        })),
        Err(error) => Answer::Failed(error),
    }
}

/// When the caller stops waiting, from the task's `request-timeout` header (a Go duration; a
/// negative one has passed already); BAD_REQUEST if it is not a duration.
fn deadline(headers: &Headers, name: &str) -> Result<Option<std::time::Duration>, HandlerError> {
    headers
        .get(name)
        .map(|value| {
            parse_go_duration(value).ok_or_else(|| {
                HandlerError::bad_request(format!("invalid `{name}` header: `{value}`"))
            })
        })
        .transpose()
}

async fn start_operation(
    ctx: &TaskContext,
    start: nexus::StartOperationRequest,
    headers: Headers,
    new_format: bool,
) -> Result<StartOperationResponse, HandlerError> {
    let request_deadline =
        deadline(&headers, "request-timeout")?.map(|timeout| Instant::now() + timeout);
    let operation_timeout = deadline(&headers, "operation-timeout")?;
    let callback = match start.callback.as_str() {
        "" => None,
        SYSTEM_CALLBACK_URL => ctx.system_callback_url.clone().map(|url| Callback::Url {
            url,
            headers: callback_headers(start.callback_header.clone()),
        }),
        url => Some(Callback::Url {
            url: url.to_owned(),
            headers: callback_headers(start.callback_header.clone()),
        }),
    };
    // Temporal puts the caller's links in the request, and (as over HTTP) in `Nexus-Link`.
    let mut links = start.links;
    if links.is_empty()
        && let Some(link) = headers
            .get("nexus-link")
            .and_then(|value| crate::protocol::decode_link(value).ok())
    {
        links.push(nexus::Link {
            url: link.url,
            r#type: link.link_type,
        });
    }
    tracing::debug!(
        service = %start.service,
        operation = %start.operation,
        request_id = %start.request_id,
        links = links.len(),
        callback = %crate::security::redact_callback_url(&start.callback),
        "Nexus start task"
    );
    let scope = Arc::new(TaskScope {
        connection: ctx.connection.clone(),
        namespace: ctx.namespace.clone(),
        task_queue: ctx.task_queue.clone(),
        identity: ctx.identity.clone(),
        request_id: start.request_id.clone(),
        callback_url: start.callback,
        callback_headers: start.callback_header,
        links: links.clone(),
    });
    let request = StartRequest {
        service: start.service,
        operation: start.operation,
        request_id: start.request_id,
        headers,
        links: links_from_nexus(links),
        callback,
        request_deadline,
        operation_timeout,
        input: payload_to_content(start.payload),
    };
    let answer = scope
        .run(ctx.dispatcher.start_as(&ctx.principal, request))
        .await;
    let variant = match answer {
        Ok(StartResponse::Sync { output, links }) => {
            start_operation_response::Variant::SyncSuccess(start_operation_response::Sync {
                payload: Some(content_to_payload(output)),
                links: links_to_nexus(links),
            })
        }
        Ok(StartResponse::Async { token, links }) => {
            #[allow(deprecated)]
            let answer = start_operation_response::Async {
                operation_id: token.clone(),
                operation_token: token,
                links: links_to_nexus(links),
            };
            start_operation_response::Variant::AsyncSuccess(answer)
        }
        Err(StartError::Operation(error)) if new_format => {
            start_operation_response::Variant::Failure(operation_error_to_temporal(&error))
        }
        #[allow(deprecated)]
        Err(StartError::Operation(error)) => {
            start_operation_response::Variant::OperationError(legacy_operation_error(&error))
        }
        Err(StartError::Handler(error)) => return Err(error),
    };
    Ok(StartOperationResponse {
        variant: Some(variant),
    })
}

async fn cancel_operation(
    ctx: &TaskContext,
    cancel: nexus::CancelOperationRequest,
    headers: Headers,
) -> Result<(), HandlerError> {
    #[allow(deprecated)]
    let token = if cancel.operation_token.is_empty() {
        cancel.operation_id
    } else {
        cancel.operation_token
    };
    if let Some(run) = WorkflowRunToken::decode(&token) {
        if run.namespace != ctx.namespace {
            return Err(HandlerError::not_found(format!(
                "token `{token}` names a workflow of another namespace"
            )));
        }
        return cancel_workflow(&ctx.connection, &ctx.identity, &run).await;
    }
    let request_deadline =
        deadline(&headers, "request-timeout")?.map(|timeout| Instant::now() + timeout);
    let request = CancelRequest {
        service: cancel.service,
        operation: cancel.operation,
        token,
        headers,
        request_deadline,
    };
    ctx.dispatcher.cancel_as(&ctx.principal, request).await
}
