//! The worker: connects to Temporal, long-polls a task queue for Nexus tasks, handles each with
//! the dispatcher, responds, and shuts down gracefully.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use temporalio_client::grpc::WorkflowService;
use temporalio_client::request_extensions::{IsWorkerTaskLongPoll, RetryConfigForCall};
use temporalio_client::tonic::{self, Code};
use temporalio_client::{
    ClientTlsOptions, Connection, ConnectionOptions, RetryOptions, TlsOptions, Url,
};
use temporalio_common::protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    PollNexusTaskQueueRequest, PollNexusTaskQueueResponse, RespondNexusTaskCompletedRequest,
    RespondNexusTaskFailedRequest,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::convert::{handler_error_to_temporal, legacy_handler_error};
use super::options::{TemporalTls, TemporalWorkerBuilder, default_identity, default_poll_retry};
use super::task::{Answer, TaskContext, handle};
use crate::http::{CompletionRetry, HttpCompletionSender};
use crate::machinery::Jitter;
use crate::security::Principal;
use crate::service::Dispatcher;

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum TemporalError {
    /// The address is not a URL or `host:port`.
    #[error("invalid Temporal address `{address}`: {reason}")]
    Address {
        /// The address given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection failed (unreachable, TLS, authentication).
    #[error("cannot connect to Temporal at {address}: {reason}")]
    Connect {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
}

/// Serves a [`Dispatcher`] to Temporal: Temporal endpoints that target a namespace and task queue
/// (`temporal operator nexus endpoint create --target-namespace NS --target-task-queue Q`) route
/// their operations to workers polling that queue, as Temporal's SDK workers do.
///
/// Each Nexus task becomes the dispatcher's start or cancel call, with the task's headers,
/// request id, callback URL and headers, links and request deadline (`Request-Timeout`), and the
/// dispatcher's answer becomes the response: a sync result, an async token, an operation error
/// (`RespondNexusTaskCompleted`), or a handler error with its type and retry behaviour
/// (`RespondNexusTaskFailed`). Errors go in the form each task announces (Temporal failures, or
/// the legacy Nexus form for older servers).
///
/// Async operations complete through the callback of their task, with the completion sender and
/// (with a store) the outbox the dispatcher uses over HTTP, under its callback guard. Operations
/// can also be implemented by Temporal workflows: see [`WorkflowRunOperation`](super::WorkflowRunOperation).
///
/// ```no_run
/// # async fn demo(dispatcher: nexus_runtime::service::Dispatcher) -> Result<(), Box<dyn std::error::Error>> {
/// use nexus_runtime::temporal::TemporalWorker;
///
/// let worker = TemporalWorker::builder(dispatcher, "127.0.0.1:7233", "default", "fraud")
///     .system_callback_url("http://127.0.0.1:7243/namespaces/default/nexus/callback")
///     .connect()
///     .await?;
/// let running = worker.start();
/// # let until_stopped = std::future::ready(());
/// until_stopped.await; // Ctrl-C, SIGTERM...
/// running.shutdown().await; // stops polling, finishes the tasks in hand
/// # Ok(()) }
/// ```
pub struct TemporalWorker {
    ctx: Arc<TaskContext>,
    pollers: usize,
    slots: Arc<Semaphore>,
    poll_retry: crate::machinery::RetryPolicy,
}

impl fmt::Debug for TemporalWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporalWorker")
            .field("namespace", &self.ctx.namespace)
            .field("task_queue", &self.ctx.task_queue)
            .field("identity", &self.ctx.identity)
            .field("pollers", &self.pollers)
            .finish_non_exhaustive()
    }
}

impl TemporalWorker {
    /// A builder for a worker serving `dispatcher` from `task_queue` of `namespace`, on the
    /// Temporal frontend at `address` (`host:port`, or an `http://` / `https://` URL).
    pub fn builder(
        dispatcher: Dispatcher,
        address: impl Into<String>,
        namespace: impl Into<String>,
        task_queue: impl Into<String>,
    ) -> TemporalWorkerBuilder {
        TemporalWorkerBuilder {
            dispatcher,
            target: address.into(),
            namespace: namespace.into(),
            task_queue: task_queue.into(),
            identity: None,
            pollers: 2,
            max_concurrent_tasks: 100,
            api_key: None,
            tls: None,
            poll_retry: default_poll_retry(),
            system_callback_url: None,
            completion_sender: None,
            principal: Principal::local("temporal"),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The identity reported to Temporal.
    pub fn identity(&self) -> &str {
        &self.ctx.identity
    }

    /// Starts polling with the configured number of pollers.
    pub fn start(self) -> RunningWorker {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let pollers = TaskTracker::new();
        let jitter = Arc::new(Jitter::from_entropy());
        for _ in 0..self.pollers {
            pollers.spawn(poll_loop(
                self.ctx.clone(),
                self.slots.clone(),
                self.poll_retry.clone(),
                jitter.clone(),
                stop.clone(),
                tasks.clone(),
            ));
        }
        pollers.close();
        tracing::info!(
            namespace = %self.ctx.namespace,
            task_queue = %self.ctx.task_queue,
            identity = %self.ctx.identity,
            pollers = self.pollers,
            "polling for Nexus tasks"
        );
        RunningWorker {
            stop,
            pollers,
            tasks,
        }
    }
}

/// Connects to Temporal as `builder` says and installs the completion sender in the dispatcher
/// (see [`TemporalWorkerBuilder::connect`]).
pub(crate) async fn connect(this: TemporalWorkerBuilder) -> Result<TemporalWorker, TemporalError> {
    let url = target_url(&this.target, this.tls.is_some() || this.api_key.is_some())?;
    let identity = this.identity.unwrap_or_else(default_identity);
    let options = ConnectionOptions::new(url)
        .identity(identity.clone())
        .maybe_api_key(this.api_key)
        .maybe_tls_options(this.tls.map(tls_options))
        .connect_timeout(this.connect_timeout)
        .build();
    let connection = Connection::connect(options)
        .await
        .map_err(|e| TemporalError::Connect {
            address: this.target.clone(),
            reason: e.to_string(),
        })?;
    let sender = this.completion_sender.unwrap_or_else(|| {
        let mut sender =
            HttpCompletionSender::new().callback_guard(this.dispatcher.callback_guard().clone());
        if this.dispatcher.has_store() {
            sender = sender.retry(CompletionRetry::never());
        }
        Arc::new(sender)
    });
    this.dispatcher.set_default_completion_sender(sender);
    Ok(TemporalWorker {
        ctx: Arc::new(TaskContext {
            dispatcher: this.dispatcher,
            principal: this.principal,
            connection,
            namespace: this.namespace,
            task_queue: this.task_queue,
            identity,
            system_callback_url: this.system_callback_url,
        }),
        pollers: this.pollers,
        slots: Arc::new(Semaphore::new(this.max_concurrent_tasks)),
        poll_retry: this.poll_retry,
    })
}

/// `host:port` as `http://host:port` (`https://` with TLS); URLs as they are.
fn target_url(address: &str, tls: bool) -> Result<Url, TemporalError> {
    let with_scheme = if address.contains("://") {
        address.to_owned()
    } else if tls {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    };
    Url::parse(&with_scheme).map_err(|e| TemporalError::Address {
        address: address.to_owned(),
        reason: e.to_string(),
    })
}

fn tls_options(tls: TemporalTls) -> TlsOptions {
    let mut options = TlsOptions::default();
    options.server_root_ca_cert = tls.server_root_ca_pem;
    options.domain = tls.domain;
    options.client_tls_options = tls.client_identity_pem.map(|(cert, key)| {
        ClientTlsOptions::builder()
            .client_cert(cert)
            .client_private_key(key)
            .build()
    });
    options
}

/// A running worker: its pollers and the tasks they took.
#[derive(Debug)]
pub struct RunningWorker {
    stop: CancellationToken,
    pollers: TaskTracker,
    tasks: TaskTracker,
}

impl RunningWorker {
    /// Stops polling (polls in progress are dropped), waits for the tasks in hand to be handled
    /// and answered, and returns. The dispatcher's async work goes on (see
    /// [`Dispatcher::shutdown`] to stop it too).
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.pollers.wait().await;
        self.tasks.close();
        self.tasks.wait().await;
        tracing::info!("stopped polling for Nexus tasks");
    }

    /// The number of tasks being handled.
    pub fn tasks_in_hand(&self) -> usize {
        self.tasks.len()
    }
}

/// One poller: waits for a task slot, long-polls, hands the task to a task of its own, and backs
/// off (with the runtime's retry policy) when polls fail.
async fn poll_loop(
    ctx: Arc<TaskContext>,
    slots: Arc<Semaphore>,
    retry: crate::machinery::RetryPolicy,
    jitter: Arc<Jitter>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let mut failures: u32 = 0;
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let polled = tokio::select! {
            _ = stop.cancelled() => return,
            polled = poll(&ctx) => polled,
        };
        match polled {
            Ok(Some(task)) => {
                failures = 0;
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    answer(&ctx, task).await;
                });
            }
            Ok(None) => failures = 0,
            Err(status) => {
                failures = failures.saturating_add(1);
                let delay = retry.delay(failures, jitter.next_fraction());
                tracing::warn!(
                    code = ?status.code(),
                    message = %status.message(),
                    failures,
                    ?delay,
                    "polling for Nexus tasks failed; backing off"
                );
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// One long poll; `None` when it ended without a task.
async fn poll(ctx: &TaskContext) -> Result<Option<PollNexusTaskQueueResponse>, tonic::Status> {
    let mut request = tonic::Request::new(PollNexusTaskQueueRequest {
        namespace: ctx.namespace.clone(),
        identity: ctx.identity.clone(),
        task_queue: Some(TaskQueue {
            name: ctx.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            ..TaskQueue::default()
        }),
        ..PollNexusTaskQueueRequest::default()
    });
    // The long-poll deadline (70 s) of Temporal's client; the backoff is the poller's own.
    request.extensions_mut().insert(IsWorkerTaskLongPoll);
    request
        .extensions_mut()
        .insert(RetryConfigForCall(RetryOptions::no_retries()));
    let mut connection = ctx.connection.clone();
    let response = connection
        .poll_nexus_task_queue(request)
        .await?
        .into_inner();
    Ok((!response.task_token.is_empty()).then_some(response))
}

/// Handles a task and responds (echoing the poller group the task came from); a response that arrives after the task's deadline is refused by
/// Temporal (`NotFound`), which only gets logged.
async fn answer(ctx: &TaskContext, task: PollNexusTaskQueueResponse) {
    let Some(request) = task.request else {
        tracing::warn!("a Nexus task without a request; ignored");
        return;
    };
    let new_format = request
        .capabilities
        .as_ref()
        .is_some_and(|c| c.temporal_failure_responses);
    let answer = handle(ctx, request, new_format).await;
    let mut connection = ctx.connection.clone();
    let result = match answer {
        Answer::Completed(response) => {
            let request = RespondNexusTaskCompletedRequest {
                namespace: ctx.namespace.clone(),
                identity: ctx.identity.clone(),
                task_token: task.task_token,
                response: Some(*response),
                poller_group_id: task.poller_group_id,
            };
            connection
                .respond_nexus_task_completed(tonic::Request::new(request))
                .await
                .map(drop)
        }
        Answer::Failed(error) => {
            tracing::debug!(%error, "Nexus task failed");
            #[allow(deprecated)]
            let mut request = RespondNexusTaskFailedRequest {
                namespace: ctx.namespace.clone(),
                identity: ctx.identity.clone(),
                task_token: task.task_token,
                poller_group_id: task.poller_group_id,
                ..RespondNexusTaskFailedRequest::default()
            };
            if new_format {
                request.failure = Some(handler_error_to_temporal(&error));
            } else {
                #[allow(deprecated)]
                {
                    request.error = Some(legacy_handler_error(&error));
                }
            }
            connection
                .respond_nexus_task_failed(tonic::Request::new(request))
                .await
                .map(drop)
        }
    };
    match result {
        Ok(()) => {}
        Err(status) if status.code() == Code::NotFound => {
            tracing::warn!(message = %status.message(), "the Nexus task expired before its answer");
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = %status.message(), "cannot answer a Nexus task");
        }
    }
}
