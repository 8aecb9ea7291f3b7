//! How a [`TemporalWorker`](super::TemporalWorker) connects and polls.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::completion::CompletionSender;
use crate::machinery::RetryPolicy;
use crate::security::Principal;

/// TLS for the connection to Temporal (a hosted Temporal, or a server with its own CA): PEM
/// material, as Temporal's clients take it.
#[derive(Clone, Default)]
pub struct TemporalTls {
    /// The CA that signed the server's certificate (default: the system's roots).
    pub server_root_ca_pem: Option<Vec<u8>>,
    /// The name the server's certificate must have (default: the address's host).
    pub domain: Option<String>,
    /// A client certificate and its private key, for mTLS.
    pub client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for TemporalTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporalTls")
            .field("server_root_ca", &self.server_root_ca_pem.is_some())
            .field("domain", &self.domain)
            .field("client_identity", &self.client_identity_pem.is_some())
            .finish()
    }
}

/// Configures a [`TemporalWorker`](super::TemporalWorker): see
/// [`TemporalWorker::builder`](super::TemporalWorker::builder).
pub struct TemporalWorkerBuilder {
    pub(crate) dispatcher: crate::service::Dispatcher,
    pub(crate) target: String,
    pub(crate) namespace: String,
    pub(crate) task_queue: String,
    pub(crate) identity: Option<String>,
    pub(crate) pollers: usize,
    pub(crate) max_concurrent_tasks: usize,
    pub(crate) api_key: Option<String>,
    pub(crate) tls: Option<TemporalTls>,
    pub(crate) poll_retry: RetryPolicy,
    pub(crate) system_callback_url: Option<String>,
    pub(crate) completion_sender: Option<Arc<dyn CompletionSender>>,
    pub(crate) principal: Principal,
    pub(crate) connect_timeout: Duration,
}

impl fmt::Debug for TemporalWorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporalWorkerBuilder")
            .field("target", &self.target)
            .field("namespace", &self.namespace)
            .field("task_queue", &self.task_queue)
            .field("identity", &self.identity)
            .field("pollers", &self.pollers)
            .field("max_concurrent_tasks", &self.max_concurrent_tasks)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("poll_retry", &self.poll_retry)
            .field("system_callback_url", &self.system_callback_url)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl TemporalWorkerBuilder {
    /// The identity the worker reports to Temporal (default `{pid}@{host}`, as Temporal's SDKs).
    #[must_use]
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// How many long polls run at once (default 2; at least 1).
    #[must_use]
    pub fn pollers(mut self, pollers: usize) -> Self {
        self.pollers = pollers.max(1);
        self
    }

    /// How many tasks are handled at once (default 100; at least 1): pollers wait for a free slot
    /// before they poll.
    #[must_use]
    pub fn max_concurrent_tasks(mut self, tasks: usize) -> Self {
        self.max_concurrent_tasks = tasks.max(1);
        self
    }

    /// Authenticates with an API key (as Temporal Cloud requires); turns TLS on.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Connects with TLS (and mTLS with a client identity).
    #[must_use]
    pub fn tls(mut self, tls: TemporalTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The backoff between failed polls (default: 200 ms doubling to 10 s, jitter 0.2, no
    /// attempt limit: a worker keeps polling until it is shut down).
    #[must_use]
    pub fn poll_retry(mut self, policy: RetryPolicy) -> Self {
        self.poll_retry = policy;
        self
    }

    /// Where the completions of async operations started by Temporal workflows go: Temporal gives
    /// those tasks the callback `temporal://system`, which a worker outside the cluster reaches
    /// at the server's Nexus callback URL, such as
    /// `http://127.0.0.1:7243/namespaces/default/nexus/callback` (the frontend's HTTP port). The
    /// dispatcher's [callback guard](crate::service::DispatcherBuilder::callback_guard) must
    /// allow it. Without it, such tasks are started without a callback (workflow-run operations
    /// are unaffected: Temporal completes them itself).
    #[must_use]
    pub fn system_callback_url(mut self, url: impl Into<String>) -> Self {
        self.system_callback_url = Some(url.into());
        self
    }

    /// Delivers completions with this sender instead of a default
    /// [`HttpCompletionSender`](crate::http::HttpCompletionSender) under the dispatcher's
    /// callback guard (ignored if the dispatcher has a completion sender already).
    #[must_use]
    pub fn completion_sender(mut self, sender: impl CompletionSender) -> Self {
        self.completion_sender = Some(Arc::new(sender));
        self
    }

    /// The principal the dispatcher sees for every task (default: the local principal
    /// `temporal`), for its access policy, quotas and request-id scopes.
    #[must_use]
    pub fn principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// Connects to Temporal and installs the completion sender in the dispatcher (an
    /// [`HttpCompletionSender`](crate::http::HttpCompletionSender) under the dispatcher's
    /// callback guard; with a store, one attempt per call, the outbox retrying), as
    /// [`HandlerServer`](crate::http::HandlerServer) does.
    pub async fn connect(self) -> Result<super::TemporalWorker, super::TemporalError> {
        super::worker::connect(self).await
    }

    /// Bounds the initial connection (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// The default identity: `{pid}@{host}`.
pub(crate) fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{}@{host}", std::process::id())
}

/// The default backoff between failed polls.
pub(crate) fn default_poll_retry() -> RetryPolicy {
    RetryPolicy::default()
        .initial_interval(Duration::from_millis(200))
        .maximum_interval(Duration::from_secs(10))
        .jitter(0.2)
}
