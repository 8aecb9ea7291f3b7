//! Temporal task-queue workers (feature `temporal`): serve a [`Dispatcher`](crate::service::Dispatcher)
//! to Temporal endpoints that target a namespace and task queue, and implement operations with
//! Temporal workflows.
//!
//! Temporal routes a Nexus endpoint either to a URL (served by
//! [`HandlerServer`](crate::http::HandlerServer)) or to a namespace and task queue, where
//! handler workers long-poll for Nexus tasks: the usual deployment, and Temporal Cloud's.
//! [`TemporalWorker`] is such a worker for any dispatcher; [`WorkflowRunOperation`] starts a
//! workflow that completes an operation, as Temporal's SDKs do.
//!
//! - `worker`: connection (TLS, API key, identity), pollers, backoff, responses, shutdown;
//! - `task`: one task as the dispatcher's start or cancel call, and its answer;
//! - `workflow_run`: workflow-run operations and their tokens;
//! - `convert`: payloads, links, headers, durations and failures in Temporal's API form.
//!
//! Built on Temporal's own Rust client (`temporalio-client`): its gRPC connection, and the raw
//! `WorkflowService` calls (`PollNexusTaskQueue`, `RespondNexusTaskCompleted`,
//! `RespondNexusTaskFailed`, `StartWorkflowExecution`, `RequestCancelWorkflowExecution`).

mod convert;
mod options;
mod task;
mod worker;
mod workflow_run;

pub use options::{TemporalTls, TemporalWorkerBuilder};
pub use task::SYSTEM_CALLBACK_URL;
pub use worker::{RunningWorker, TemporalError, TemporalWorker};
pub use workflow_run::{WorkflowRunOperation, WorkflowRunToken};
