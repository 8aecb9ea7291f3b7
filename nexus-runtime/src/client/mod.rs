//! The caller side: a [`Client`] routes calls to endpoints; generated stubs wrap a
//! [`ServiceClient`] and return [`Call`]s; a started operation is an [`OperationHandle`].

mod call;
mod handle;
mod options;
mod pending;

pub use call::Call;
pub use handle::OperationHandle;
pub use options::{CallOptions, CancellationType};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use self::handle::Shared;
use self::pending::{PendingSink, PendingTable};
use crate::codec;
use crate::completion::{Callback, Completion};
use crate::error::{CallError, HandlerError};
use crate::operation::Operation;
use crate::service::Service;
use crate::transport::{CancelRequest, StartRequest, StartResponse, Transport};

/// Calls operations on named endpoints. Cheap to clone; clones share endpoints and pending
/// operations.
///
/// ```
/// use nexus_runtime::{Client, service::Dispatcher, transport::InProcessTransport};
///
/// let client = Client::builder()
///     .endpoint("fraud-detection", InProcessTransport::new(Dispatcher::builder().build()))
///     .build();
/// assert_eq!(client.endpoint_names(), ["fraud-detection"]);
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: HashMap<String, Arc<dyn Transport>>,
    pending: Arc<PendingTable>,
    callback_url: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoint_names())
            .field("callback_url", &self.inner.callback_url)
            .field("pending", &self.inner.pending.len())
            .finish()
    }
}

/// Builds a [`Client`].
#[derive(Default)]
pub struct ClientBuilder {
    endpoints: HashMap<String, Arc<dyn Transport>>,
    callback_url: Option<String>,
}

impl ClientBuilder {
    /// Routes calls for endpoint `name` through `transport`.
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>, transport: impl Transport) -> Self {
        self.endpoints.insert(name.into(), Arc::new(transport));
        self
    }

    /// Routes calls for endpoint `name` through a shared transport.
    #[must_use]
    pub fn endpoint_arc(mut self, name: impl Into<String>, transport: Arc<dyn Transport>) -> Self {
        self.endpoints.insert(name.into(), transport);
        self
    }

    /// The base URL of this process's callback receiver, for transports whose completions come
    /// back over the network. Each async operation gets `{base}/{callback id}`.
    #[must_use]
    pub fn callback_url(mut self, base: impl Into<String>) -> Self {
        self.callback_url = Some(base.into().trim_end_matches('/').to_owned());
        self
    }

    /// Builds the client.
    pub fn build(self) -> Client {
        Client {
            inner: Arc::new(Inner {
                endpoints: self.endpoints,
                pending: Arc::default(),
                callback_url: self.callback_url,
            }),
        }
    }
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The configured endpoint names, sorted.
    pub fn endpoint_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.endpoints.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// A client for service `S` on `endpoint`; generated stubs wrap one.
    pub fn service<S: Service>(&self, endpoint: impl Into<String>) -> ServiceClient {
        ServiceClient {
            client: self.clone(),
            endpoint: endpoint.into().into(),
            service: S::NAME,
        }
    }

    /// Number of async operations waiting for their completion.
    pub fn pending_operations(&self) -> usize {
        self.inner.pending.len()
    }

    /// Delivers a completion received for callback id `callback_id` (the callback receiver calls
    /// this). Unknown or repeated completions are NOT_FOUND.
    pub fn deliver_completion(
        &self,
        callback_id: &str,
        completion: Completion,
    ) -> Result<(), HandlerError> {
        self.inner.pending.complete(callback_id, completion)
    }

    pub(crate) fn pending(&self) -> &PendingTable {
        &self.inner.pending
    }

    fn transport(&self, endpoint: &str) -> Result<&Arc<dyn Transport>, CallError> {
        self.inner.endpoints.get(endpoint).ok_or_else(|| {
            CallError::Invalid(format!(
                "unknown endpoint `{endpoint}`; configured endpoints: {}",
                self.endpoint_names().join(", ")
            ))
        })
    }

    /// Starts operation `Op` on `endpoint`.
    pub async fn start<Op: Operation>(
        &self,
        endpoint: &str,
        input: Op::Input,
        options: CallOptions,
    ) -> Result<OperationHandle<Op>, CallError> {
        let scheduled = Instant::now();
        let transport = self.transport(endpoint)?.clone();
        let input = codec::encode(&input).map_err(|e| {
            CallError::Codec(format!("cannot encode the input of `{}`: {e}", Op::NAME))
        })?;
        let request_id = options
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let deadline = options.schedule_to_close_timeout.map(|t| scheduled + t);
        let (pending_id, outcome) = self.inner.pending.register();
        let callback = if transport.needs_callback_url() {
            let base = self.inner.callback_url.as_deref().ok_or_else(|| {
                self.inner.pending.remove(&pending_id);
                CallError::Invalid(format!(
                    "endpoint `{endpoint}` needs a callback URL for async operations; \
                     configure one with ClientBuilder::callback_url"
                ))
            })?;
            Callback::Url {
                url: format!("{base}/{pending_id}"),
                headers: Default::default(),
            }
        } else {
            Callback::Local(Arc::new(PendingSink {
                table: self.inner.pending.clone(),
                id: pending_id.clone(),
            }))
        };
        let request = StartRequest {
            service: <Op::Service as Service>::NAME.to_owned(),
            operation: Op::NAME.to_owned(),
            request_id: request_id.clone(),
            headers: options.headers.clone(),
            links: options.links.clone(),
            callback: Some(callback),
            request_deadline: deadline,
            operation_timeout: deadline.map(|d| d.saturating_duration_since(Instant::now())),
            input,
        };
        let response = match deadline {
            Some(d) => match tokio::time::timeout_at(d, transport.start(request)).await {
                Ok(r) => r,
                Err(_) => Err(CallError::Timeout {
                    kind: crate::error::TimeoutKind::ScheduleToClose,
                    last_failure: None,
                }),
            },
            None => transport.start(request).await,
        };
        let mut shared = Shared {
            client: self.clone(),
            endpoint: endpoint.to_owned(),
            service: <Op::Service as Service>::NAME,
            operation: Op::NAME,
            request_id,
            token: None,
            start_links: Vec::new(),
            outcome,
            pending_id: None,
            deadline,
            cancellation_type: options.cancellation_type,
        };
        match response {
            Err(e) => {
                self.inner.pending.remove(&pending_id);
                Err(e)
            }
            Ok(StartResponse::Sync { output, links }) => {
                self.inner.pending.remove(&pending_id);
                shared
                    .outcome
                    .send_replace(Some((Ok(output), links.clone())));
                shared.start_links = links;
                Ok(OperationHandle::new(shared))
            }
            Ok(StartResponse::Async { token, links }) => {
                self.inner.pending.set_token(&pending_id, &token);
                shared.token = Some(token);
                shared.start_links = links;
                shared.pending_id = Some(pending_id);
                Ok(OperationHandle::new(shared))
            }
        }
    }

    pub(crate) async fn send_cancel(
        &self,
        endpoint: &str,
        request: CancelRequest,
    ) -> Result<(), CallError> {
        let transport = self.transport(endpoint)?.clone();
        transport.cancel(request).await
    }
}

/// A [`Client`] bound to one service on one endpoint. Generated caller stubs wrap one.
#[derive(Clone, Debug)]
pub struct ServiceClient {
    client: Client,
    endpoint: Arc<str>,
    service: &'static str,
}

impl ServiceClient {
    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The endpoint name.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The service's wire name.
    pub fn service_name(&self) -> &'static str {
        self.service
    }

    /// A call of operation `Op` with `input`.
    pub fn call<Op: Operation>(&self, input: Op::Input) -> Call<Op> {
        Call::new(self.clone(), input)
    }
}
