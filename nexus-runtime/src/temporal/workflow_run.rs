//! Workflow-run operations: an operation implemented by a Temporal workflow, started with the
//! operation's completion callback attached, so that Temporal completes the operation when the
//! workflow closes (as Temporal's SDKs do).

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use temporalio_client::Connection;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::{self, Code};
use temporalio_common::protos::temporal::api::common::v1::{
    self as common, Payloads, WorkflowExecution, WorkflowType, callback, link,
};
use temporalio_common::protos::temporal::api::enums::v1::{
    EventType, TaskQueueKind, WorkflowIdConflictPolicy,
};
use temporalio_common::protos::temporal::api::nexus::v1::{
    self as nexus, workflow_event_link_from_nexus,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::OnConflictOptions;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    RequestCancelWorkflowExecutionRequest, StartWorkflowExecutionRequest,
};

use super::convert::json_payload;
use crate::error::HandlerError;
use crate::link::Link;
use crate::operation::{AsyncOperation, OperationContext, OperationResult, OperationStart};

/// The link type of a link to a workflow's history event.
pub(crate) const WORKFLOW_EVENT_LINK: &str = "temporal.api.common.v1.Link.WorkflowEvent";
/// The callback-header names under which the operation token travels with the completion.
const TOKEN_HEADERS: [&str; 2] = ["nexus-operation-token", "nexus-operation-id"];

tokio::task_local! {
    static TASK: Arc<TaskScope>;
}

/// What the Temporal worker knows of the Nexus task being handled, for the workflow-run
/// operations its handlers start.
pub(crate) struct TaskScope {
    pub connection: Connection,
    pub namespace: String,
    /// The worker's task queue (the default task queue of workflows it starts).
    pub task_queue: String,
    pub identity: String,
    pub request_id: String,
    /// The callback URL of the task, as Temporal sent it (`temporal://system` for workflow callers).
    pub callback_url: String,
    /// The callback headers of the task, as Temporal sent them.
    pub callback_headers: HashMap<String, String>,
    /// The caller's links, as Temporal sent them.
    pub links: Vec<nexus::Link>,
}

impl TaskScope {
    /// Runs `future` with this task as the current one.
    pub(crate) async fn run<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        TASK.scope(self, future).await
    }
}

/// The operation token of a workflow-run operation, as Temporal's SDKs write it: unpadded
/// base64url of `{"t":1,"ns":namespace,"wid":workflow id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRunToken {
    /// The token type: 1 for a workflow run.
    #[serde(rename = "t")]
    pub token_type: u8,
    /// The namespace of the workflow.
    #[serde(rename = "ns")]
    pub namespace: String,
    /// The workflow id.
    #[serde(rename = "wid")]
    pub workflow_id: String,
}

impl WorkflowRunToken {
    /// The token of workflow `workflow_id` in `namespace`.
    pub fn new(namespace: impl Into<String>, workflow_id: impl Into<String>) -> Self {
        Self {
            token_type: 1,
            namespace: namespace.into(),
            workflow_id: workflow_id.into(),
        }
    }

    /// The token as sent on the wire.
    ///
    /// ```
    /// use nexus_runtime::temporal::WorkflowRunToken;
    /// let token = WorkflowRunToken::new("default", "check-tx-1");
    /// assert_eq!(WorkflowRunToken::decode(&token.encode()), Some(token));
    /// ```
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a token; `None` unless it is a workflow-run token with a namespace and workflow id
    /// (padding is tolerated; a `v` field, which Temporal's SDKs never write, is refused).
    pub fn decode(token: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if value.get("v").is_some() {
            return None;
        }
        let token: Self = serde_json::from_value(value).ok()?;
        (token.token_type == 1 && !token.namespace.is_empty() && !token.workflow_id.is_empty())
            .then_some(token)
    }
}

/// An operation implemented by a Temporal workflow: used inside an operation method served by a
/// [`TemporalWorker`](super::TemporalWorker), it starts the workflow with the operation's input,
/// attaching the Nexus completion callback of the task (with the request id and the caller's
/// links, both ways), and answers asynchronously with the workflow-run token. Temporal completes
/// the operation with the workflow's result when it closes (failed, canceled, terminated or timed
/// out workflows complete it as failed or canceled); a cancel request for the token requests
/// cancellation of the workflow.
///
/// `I` and `O` are the operation's input and output, and the workflow's input and result: the
/// workflow (in any Temporal SDK) takes the input's JSON and returns the output's.
///
/// ```no_run
/// use nexus_runtime::temporal::WorkflowRunOperation;
/// use nexus_runtime::{OperationContext, OperationResult};
///
/// async fn check(ctx: OperationContext, transaction_id: String) -> OperationResult<bool> {
///     WorkflowRunOperation::<String, bool>::new("CheckTransaction")
///         .workflow_id(format!("check-{transaction_id}"))
///         .task_queue("fraud-checks")
///         .start(&ctx, transaction_id)
///         .await
/// }
/// ```
pub struct WorkflowRunOperation<I, O> {
    workflow_type: String,
    workflow_id: Option<String>,
    task_queue: Option<String>,
    execution_timeout: Option<Duration>,
    use_existing: bool,
    types: PhantomData<fn(I) -> O>,
}

impl<I, O> fmt::Debug for WorkflowRunOperation<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowRunOperation")
            .field("workflow_type", &self.workflow_type)
            .field("workflow_id", &self.workflow_id)
            .field("task_queue", &self.task_queue)
            .field("execution_timeout", &self.execution_timeout)
            .field("use_existing", &self.use_existing)
            .finish()
    }
}

impl<I: Serialize, O: Send + 'static> WorkflowRunOperation<I, O> {
    /// Runs workflows of type `workflow_type`.
    pub fn new(workflow_type: impl Into<String>) -> Self {
        Self {
            workflow_type: workflow_type.into(),
            workflow_id: None,
            task_queue: None,
            execution_timeout: None,
            use_existing: false,
            types: PhantomData,
        }
    }

    /// The workflow id. Derive it from the input (starts are retried, and a retry must find the
    /// same workflow); by default it is `{service}-{operation}-{request id}`.
    #[must_use]
    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.workflow_id = Some(id.into());
        self
    }

    /// The task queue the workflow runs on (default: the worker's own task queue).
    #[must_use]
    pub fn task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.task_queue = Some(task_queue.into());
        self
    }

    /// Bounds the workflow's execution (by default the namespace's rules apply; the caller's
    /// schedule-to-close timeout bounds the operation anyway).
    #[must_use]
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// When a workflow with the id is already running, attaches this operation's callback to it
    /// (conflict policy `USE_EXISTING`) instead of failing the start.
    #[must_use]
    pub fn use_existing(mut self) -> Self {
        self.use_existing = true;
        self
    }

    /// Starts the workflow for the operation of `ctx` with `input`, and answers with its token.
    ///
    /// Errors: outside a Temporal worker, a non-retryable INTERNAL error; an input that cannot be
    /// encoded, INTERNAL; a workflow that is already running (without
    /// [`use_existing`](Self::use_existing)), non-retryable INTERNAL; other gRPC errors as
    /// Temporal's SDKs map them (InvalidArgument is BAD_REQUEST, Unavailable UNAVAILABLE, ...).
    pub async fn start(self, ctx: &OperationContext, input: I) -> OperationResult<O> {
        let Ok(task) = TASK.try_with(Arc::clone) else {
            return Err(HandlerError::internal(format!(
                "operation `{}` starts a Temporal workflow: it must be served by a Temporal worker",
                ctx.operation()
            ))
            .with_retryable(false)
            .into());
        };
        let input = serde_json::to_value(&input).map_err(|e| {
            HandlerError::internal(format!("cannot encode the workflow input: {e}"))
        })?;
        let workflow_id = self.workflow_id.clone().unwrap_or_else(|| {
            let request_id = match task.request_id.as_str() {
                "" => crate::id::new_v4().simple().to_string(),
                id => id.to_owned(),
            };
            format!("{}-{}-{request_id}", ctx.service(), ctx.operation())
        });
        let token = WorkflowRunToken::new(&task.namespace, &workflow_id).encode();
        let request = self.request(&task, workflow_id.clone(), &token, input);
        let mut connection = task.connection.clone();
        let response = connection
            .start_workflow_execution(tonic::Request::new(request))
            .await
            .map_err(|status| grpc_error(&status, "cannot start the workflow"))?
            .into_inner();
        let link = response
            .link
            .and_then(|l| nexus_link(&l))
            .unwrap_or_else(|| started_event_link(&task.namespace, &workflow_id, &response.run_id));
        ctx.add_link(link);
        tracing::debug!(
            workflow_id = %workflow_id,
            run_id = %response.run_id,
            started = response.started,
            "started the workflow of a workflow-run operation"
        );
        Ok(OperationStart::Async(AsyncOperation::completed_elsewhere(
            token,
        )))
    }

    fn request(
        &self,
        task: &TaskScope,
        workflow_id: String,
        token: &str,
        input: serde_json::Value,
    ) -> StartWorkflowExecutionRequest {
        let links: Vec<common::Link> = task.links.iter().filter_map(caller_link).collect();
        let mut header = task.callback_headers.clone();
        for name in TOKEN_HEADERS {
            header.insert(name.to_owned(), token.to_owned());
        }
        let callback = common::Callback {
            variant: Some(callback::Variant::Nexus(callback::Nexus {
                url: task.callback_url.clone(),
                header,
            })),
            links: links.clone(),
        };
        let request_id = match task.request_id.as_str() {
            "" => crate::id::new_v4().to_string(),
            id => id.to_owned(),
        };
        let conflict = if self.use_existing {
            WorkflowIdConflictPolicy::UseExisting
        } else {
            WorkflowIdConflictPolicy::Fail
        };
        StartWorkflowExecutionRequest {
            namespace: task.namespace.clone(),
            workflow_id,
            workflow_type: Some(WorkflowType {
                name: self.workflow_type.clone(),
            }),
            task_queue: Some(TaskQueue {
                name: self
                    .task_queue
                    .clone()
                    .unwrap_or_else(|| task.task_queue.clone()),
                kind: TaskQueueKind::Normal as i32,
                ..TaskQueue::default()
            }),
            input: Some(Payloads {
                payloads: vec![json_payload(&input)],
            }),
            workflow_execution_timeout: self.execution_timeout.and_then(|t| t.try_into().ok()),
            identity: task.identity.clone(),
            request_id,
            workflow_id_conflict_policy: conflict as i32,
            completion_callbacks: vec![callback],
            links,
            on_conflict_options: Some(OnConflictOptions {
                attach_request_id: true,
                attach_completion_callbacks: true,
                attach_links: true,
            }),
            ..StartWorkflowExecutionRequest::default()
        }
    }
}

/// Requests cancellation of the workflow of a workflow-run token (the run it names, whichever is
/// current). Temporal then completes the operation as canceled when the workflow closes so.
pub(crate) async fn cancel_workflow(
    connection: &Connection,
    identity: &str,
    token: &WorkflowRunToken,
) -> Result<(), HandlerError> {
    let request = RequestCancelWorkflowExecutionRequest {
        namespace: token.namespace.clone(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: token.workflow_id.clone(),
            run_id: String::new(),
        }),
        identity: identity.to_owned(),
        request_id: crate::id::new_v4().to_string(),
        reason: "the Nexus operation was canceled".to_owned(),
        ..RequestCancelWorkflowExecutionRequest::default()
    };
    let mut connection = connection.clone();
    connection
        .request_cancel_workflow_execution(tonic::Request::new(request))
        .await
        .map_err(|status| grpc_error(&status, "cannot cancel the workflow"))?;
    Ok(())
}

/// A gRPC error of a call made for the operation as a handler error, as Temporal's SDKs map them.
pub(crate) fn grpc_error(status: &tonic::Status, doing: &str) -> HandlerError {
    let message = format!("{doing}: {}", status.message());
    match status.code() {
        Code::InvalidArgument => HandlerError::bad_request(message),
        Code::AlreadyExists | Code::FailedPrecondition | Code::OutOfRange => {
            HandlerError::internal(message).with_retryable(false)
        }
        Code::Aborted | Code::Unavailable => HandlerError::unavailable(message),
        Code::NotFound => HandlerError::not_found(message),
        Code::ResourceExhausted => HandlerError::resource_exhausted(message),
        Code::Unimplemented => HandlerError::not_implemented(message),
        Code::DeadlineExceeded => HandlerError::upstream_timeout(message),
        _ => HandlerError::internal(message),
    }
}

/// A caller's Nexus link as the API's link to a workflow event (other links are not passed on,
/// as in Temporal's SDKs), its path segments unescaped.
fn caller_link(link: &nexus::Link) -> Option<common::Link> {
    let mut parsed = workflow_event_link_from_nexus(link).ok()?;
    if let Some(link::Variant::WorkflowEvent(event)) = &mut parsed.variant {
        for field in [
            &mut event.namespace,
            &mut event.workflow_id,
            &mut event.run_id,
        ] {
            *field = percent_encoding::percent_decode_str(field)
                .decode_utf8()
                .ok()?
                .into_owned();
        }
    }
    Some(parsed)
}

/// The Nexus form of a link to a workflow event (Temporal's `temporal:///namespaces/...` URL).
fn nexus_link(link: &common::Link) -> Option<Link> {
    let Some(link::Variant::WorkflowEvent(event)) = &link.variant else {
        return None;
    };
    let path = format!(
        "temporal:///namespaces/{}/workflows/{}/{}/history",
        escape(&event.namespace),
        escape(&event.workflow_id),
        escape(&event.run_id)
    );
    let query = match &event.reference {
        Some(link::workflow_event::Reference::EventRef(r)) => format!(
            "eventID={}&eventType={}&referenceType=EventReference",
            r.event_id,
            event_type_name(r.event_type)
        ),
        Some(link::workflow_event::Reference::RequestIdRef(r)) => format!(
            "requestID={}&eventType={}&referenceType=RequestIdReference",
            escape(&r.request_id),
            event_type_name(r.event_type)
        ),
        None => return Some(Link::new(path, WORKFLOW_EVENT_LINK)),
    };
    Some(Link::new(format!("{path}?{query}"), WORKFLOW_EVENT_LINK))
}

/// A link to the started event of a workflow run.
fn started_event_link(namespace: &str, workflow_id: &str, run_id: &str) -> Link {
    Link::new(
        format!(
            "temporal:///namespaces/{}/workflows/{}/{}/history?eventID=1&eventType=WorkflowExecutionStarted&referenceType=EventReference",
            escape(namespace),
            escape(workflow_id),
            escape(run_id)
        ),
        WORKFLOW_EVENT_LINK,
    )
}

/// An event type as Temporal's links name it: `WorkflowExecutionStarted`.
fn event_type_name(event_type: i32) -> String {
    let screaming = EventType::try_from(event_type)
        .unwrap_or(EventType::WorkflowExecutionStarted)
        .as_str_name();
    screaming
        .strip_prefix("EVENT_TYPE_")
        .unwrap_or(screaming)
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect()
}

/// A path segment or query value escaped as Go's `url.PathEscape` does.
fn escape(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_temporals() {
        let token = WorkflowRunToken::new("default", "echo-wf-85c98dd8");
        // As Temporal's Python SDK wrote it for this workflow (captured from a dev server).
        assert_eq!(
            WorkflowRunToken::decode(
                "eyJ0IjoxLCJucyI6ImRlZmF1bHQiLCJ3aWQiOiJlY2hvLXdmLTg1Yzk4ZGQ4In0"
            ),
            Some(token.clone())
        );
        assert_eq!(WorkflowRunToken::decode(&token.encode()), Some(token));
        for foreign in [
            "",
            "0f6c2a",
            "bm90IGpzb24",
            "eyJ0IjoyLCJucyI6ImEiLCJ3aWQiOiJiIn0",
        ] {
            assert_eq!(WorkflowRunToken::decode(foreign), None, "{foreign}");
        }
        let versioned = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"v":1,"t":1,"ns":"a","wid":"b"}"#);
        assert_eq!(WorkflowRunToken::decode(&versioned), None);
    }

    #[test]
    fn links_name_the_started_event() {
        let link = started_event_link("default", "check tx/1", "01a2");
        assert_eq!(
            link.url,
            "temporal:///namespaces/default/workflows/check%20tx%2F1/01a2/history?eventID=1&eventType=WorkflowExecutionStarted&referenceType=EventReference"
        );
        let parsed = caller_link(&nexus::Link {
            url: link.url.clone(),
            r#type: link.link_type.clone(),
        })
        .unwrap();
        assert_eq!(nexus_link(&parsed).unwrap(), link);
        assert_eq!(
            event_type_name(EventType::NexusOperationScheduled as i32),
            "NexusOperationScheduled"
        );
    }

    #[test]
    fn grpc_errors_map_as_temporals_sdks_do() {
        use crate::error::HandlerErrorType as T;
        let cases = [
            (Code::InvalidArgument, T::BadRequest, false),
            (Code::AlreadyExists, T::Internal, false),
            (Code::Unavailable, T::Unavailable, true),
            (Code::NotFound, T::NotFound, false),
            (Code::DeadlineExceeded, T::UpstreamTimeout, true),
            (Code::Unknown, T::Internal, true),
        ];
        for (code, error_type, retryable) in cases {
            let e = grpc_error(&tonic::Status::new(code, "x"), "doing");
            assert_eq!(
                (e.error_type.clone(), e.is_retryable()),
                (error_type, retryable),
                "{code:?}"
            );
        }
    }
}
