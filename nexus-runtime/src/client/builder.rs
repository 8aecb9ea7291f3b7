//! Building a [`Client`]: endpoints, callback URL, jitter, and durability.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::caller_link::CallerLinks;
use super::durable::{DEFAULT_RETENTION, Durability, ReplicaConfig};
use super::endpoint::EndpointState;
use super::{Client, EndpointConfig, Inner};
use crate::codec::PayloadCodec;
use crate::codec::payload::CodecSlot;
use crate::machinery::Jitter;
use crate::store::{CallerStore, MemoryStore};
use crate::transport::Transport;

/// Builds a [`Client`].
#[derive(Default)]
pub struct ClientBuilder {
    endpoints: HashMap<String, EndpointConfig>,
    callback_url: Option<String>,
    caller_links: CallerLinks,
    jitter: Option<Jitter>,
    store: Option<Arc<dyn CallerStore>>,
    owner_id: Option<String>,
    replicas: Option<ReplicaConfig>,
    retention: Option<Duration>,
    purge_interval: Option<Duration>,
    accept_legacy_unsigned: bool,
    codec: CodecSlot,
    #[cfg(feature = "registry")]
    registry: Option<crate::registry::EndpointRegistry>,
    #[cfg(feature = "registry")]
    caller: Option<crate::security::Principal>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("callback_url", &self.callback_url)
            .field("store", &self.store.is_some())
            .field("owner_id", &self.owner_id)
            .field("replicas", &self.replicas)
            .field("retention", &self.retention)
            .field("accept_legacy_unsigned", &self.accept_legacy_unsigned)
            .field("payload_codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Routes calls for endpoint `name` through a transport, or through an [`EndpointConfig`]
    /// (several targets, retry policy, breaker, limits, timeouts).
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>, config: impl Into<EndpointConfig>) -> Self {
        self.endpoints.insert(name.into(), config.into());
        self
    }

    /// Routes calls for endpoint `name` through a shared transport, with the default settings.
    #[must_use]
    pub fn endpoint_arc(mut self, name: impl Into<String>, transport: Arc<dyn Transport>) -> Self {
        self.endpoints
            .insert(name.into(), EndpointConfig::with_targets(vec![transport]));
        self
    }

    /// The base URL of this process's callback receiver, for transports whose completions come
    /// back over the network. Each async operation gets `{base}/{operation id}?secret={secret}`,
    /// with a secret of its own that the receiver requires (see
    /// [`CallbackSecret`](crate::security::CallbackSecret)).
    ///
    /// With a durable store, keep it the same across restarts (a fixed port, or a name in front of
    /// the process): handlers send the completions of operations started before a restart to the
    /// URL they were given. Replicas sharing a store share one callback address.
    #[must_use]
    pub fn callback_url(mut self, base: impl Into<String>) -> Self {
        self.callback_url = Some(base.into().trim_end_matches('/').to_owned());
        self
    }

    /// The URL each start's link back to its operation begins with: the link is
    /// `{base}/{operation id}`, of type [`CALLER_LINK_TYPE`](super::CALLER_LINK_TYPE). Point it at
    /// something that shows the operation, such as this process's admin API
    /// (`http://payments.internal:9100/api/operations`), so the handler's records lead back here.
    ///
    /// By default every start of a client with a [callback URL](Self::callback_url) carries the
    /// link `nexus-rs://{callback host:port}/operations/{operation id}`, naming the caller by its
    /// callback receiver (a client without one, in-process only, sends none);
    /// [`no_caller_link`](Self::no_caller_link) sends none at all.
    #[must_use]
    pub fn caller_link_base(mut self, base: impl Into<String>) -> Self {
        self.caller_links = CallerLinks::Base(base.into());
        self
    }

    /// Sends no link back to the caller's operation with each start (see
    /// [`caller_link_base`](Self::caller_link_base)).
    #[must_use]
    pub fn no_caller_link(mut self) -> Self {
        self.caller_links = CallerLinks::Off;
        self
    }

    /// The random source of backoff jitter (default: seeded from the operating system). A seeded
    /// source ([`Jitter::seeded`]) makes retry schedules reproducible.
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Records operations in `store` and resumes them after a restart (see
    /// [`Client::recover`]). Operations then outlive their handles: dropping every handle does not
    /// abandon an operation; [`Client::attach`] gives a new handle.
    ///
    /// Without a store the client keeps its operations in a private
    /// [`MemoryStore`](crate::store::MemoryStore): the same code path, but nothing survives the
    /// process, an operation's record is removed when it ends (unless a
    /// [`retention`](Self::retention) is set), and dropping every handle abandons an operation.
    ///
    /// One process per store, unless the processes are [`replicas`](Self::replicas).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn CallerStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// This process's id as the owner of leases (default: a new UUID per client). Giving a stable
    /// id (a pod name) lets a restarted replica resume its own operations at once instead of
    /// waiting for their leases to expire; two live processes must never share one.
    #[must_use]
    pub fn owner_id(mut self, owner: impl Into<String>) -> Self {
        self.owner_id = Some(owner.into());
        self
    }

    /// Shares the store with other replicas of this caller (for example on PostgreSQL): each
    /// drives the operations it holds a lease on and takes over those of a replica that died.
    /// Replicas must share one callback address (see the `client::durable` documentation).
    #[must_use]
    pub fn replicas(mut self, config: ReplicaConfig) -> Self {
        self.replicas = Some(config);
        self
    }

    /// How long finished operations stay in the store, for [`Client::attach`] and request id
    /// deduplication (default one week with a configured store; without one, records are removed
    /// when their operation ends).
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// How often finished operations past the retention are purged (default: a quarter of the
    /// retention, between 1 s and 10 min).
    #[must_use]
    pub fn purge_interval(mut self, interval: Duration) -> Self {
        self.purge_interval = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// Accepts completions without a callback secret for the operations recorded before
    /// completion secrets existed (records with no
    /// [`callback_secret`](crate::store::CallerRecord::callback_secret)), whose handlers were
    /// given a callback URL without one. Off by default: every completion must then carry its
    /// operation's secret, and a completion for such a record is refused like one for an unknown
    /// operation. Turn it on only while operations started by an earlier version are still in
    /// flight after an upgrade; operations recorded since always need their secret.
    #[must_use]
    pub fn accept_legacy_unsigned_completions(mut self, accept: bool) -> Self {
        self.accept_legacy_unsigned = accept;
        self
    }

    /// Transforms payloads end to end with `codec` (for example encrypts them with
    /// [`AesGcmCodec`](crate::codec::aes_gcm::AesGcmCodec)): every input is encoded before it is
    /// recorded in the store and sent, every result (sync, or an async operation's completion) is
    /// decoded when it is read. The handlers must decode and encode with a matching codec (see
    /// [`DispatcherBuilder::payload_codec`](crate::service::DispatcherBuilder::payload_codec)).
    ///
    /// An input the codec cannot encode fails the call, and a result it cannot decode is the
    /// call's error, both as [`CallError::Codec`](crate::CallError::Codec). Given several times,
    /// the codecs form a chain in that order (see [`CodecChain`](crate::codec::CodecChain)).
    /// The details of operation errors are decoded too (see
    /// [`codec::details`](crate::codec::details)); messages travel as they are.
    #[must_use]
    pub fn payload_codec(mut self, codec: impl PayloadCodec) -> Self {
        self.codec.push(Arc::new(codec));
        self
    }

    /// Resolves endpoint names that were not configured with [`endpoint`](Self::endpoint)
    /// through `registry` (feature `registry`), at every call: an endpoint changed or added in
    /// the registry (through its API, or its file reloaded) is used by the next call, without
    /// rebuilding the client, with the default [`EndpointConfig`] settings. Calls are checked
    /// against the endpoint's allowed callers as the [`caller`](Self::caller) (anonymous by
    /// default); a refused call fails with [`CallError::Invalid`](crate::CallError::Invalid)
    /// and is audited by the registry.
    #[cfg(feature = "registry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
    #[must_use]
    pub fn registry(mut self, registry: crate::registry::EndpointRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Who this client calls as, for the [`registry`](Self::registry)'s allowed callers.
    #[cfg(feature = "registry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
    #[must_use]
    pub fn caller(mut self, caller: crate::security::Principal) -> Self {
        self.caller = Some(caller);
        self
    }

    /// Builds the client. Inside a Tokio runtime it starts its caretaker at once: recovery of the
    /// store's unfinished operations, then lease renewal and claims (replicas) and purging.
    /// Outside one, that starts with the first `schedule`, `attach` or `recover`.
    pub fn build(self) -> Client {
        let endpoints = self
            .endpoints
            .into_iter()
            .map(|(name, config)| {
                let state = Arc::new(EndpointState::new(name.clone(), config));
                (name, state)
            })
            .collect();
        let persistent = self.store.is_some();
        let retention = self.retention.unwrap_or(DEFAULT_RETENTION);
        let ephemeral = self.store.is_none() && self.retention.is_none();
        let store: Arc<dyn CallerStore> = match self.store {
            Some(store) => store,
            None => Arc::new(MemoryStore::new()),
        };
        let durability = Durability {
            store,
            persistent,
            ephemeral,
            owner: self
                .owner_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            replicas: self.replicas,
            retention,
            purge_interval: self
                .purge_interval
                .unwrap_or_else(|| Durability::default_purge_interval(retention)),
            accept_legacy_unsigned: self.accept_legacy_unsigned,
        };
        #[allow(unused_mut)]
        let mut inner = Inner::new(
            endpoints,
            self.callback_url,
            self.caller_links,
            self.jitter.unwrap_or_default(),
            durability,
            self.codec,
        );
        #[cfg(feature = "registry")]
        {
            inner.registered = self.registry.map(|registry| {
                super::registered::Registered::new(
                    registry,
                    self.caller
                        .unwrap_or_else(crate::security::Principal::anonymous),
                )
            });
        }
        let client = Client {
            inner: Arc::new(inner),
        };
        client.ensure_caretaker();
        client
    }
}
