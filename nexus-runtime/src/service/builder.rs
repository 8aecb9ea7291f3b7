//! Building a [`Dispatcher`]: services, completion sender, callback guard, access policy, quota,
//! store and durability options, payload codec.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::dispatcher::{Dispatcher, Inner};
use super::durable::{self, DurabilityOptions, Durable};
use super::handler::ServiceHandler;
use super::names::NameTable;
use super::quota::Quota;
use super::running::RunningOperations;
use crate::codec::PayloadCodec;
use crate::codec::payload::CodecSlot;
use crate::completion::CompletionSender;
use crate::security::{AccessPolicy, CallbackGuard};
use crate::store::Store;

/// Builds a [`Dispatcher`].
#[derive(Default)]
pub struct DispatcherBuilder {
    services: BTreeMap<String, Arc<dyn ServiceHandler>>,
    completion_sender: Option<Arc<dyn CompletionSender>>,
    callback_guard: Option<CallbackGuard>,
    store: Option<Arc<dyn Store>>,
    durability: Option<DurabilityOptions>,
    access: AccessPolicy,
    quota: Quota,
    codec: CodecSlot,
}

impl DispatcherBuilder {
    /// Adds a service handler.
    ///
    /// # Panics
    /// If a service with the same name was already added: two handlers for one service is a
    /// configuration mistake, caught at start-up.
    #[must_use]
    pub fn service(mut self, handler: impl ServiceHandler) -> Self {
        let name = handler.name().to_owned();
        assert!(
            !self.services.contains_key(&name),
            "service `{name}` is registered twice in one dispatcher"
        );
        self.services.insert(name, Arc::new(handler));
        self
    }

    /// Sets what delivers completions to callback URLs (the HTTP server sets its own). With a
    /// store, each call of the sender is one attempt of the outbox, which does the retrying:
    /// give it no retries of its own.
    #[must_use]
    pub fn completion_sender(mut self, sender: impl CompletionSender) -> Self {
        self.completion_sender = Some(Arc::new(sender));
        self
    }

    /// Where completions may be delivered: every start request with a callback URL is checked
    /// against `guard` before anything runs or is recorded (a refused URL or callback header is
    /// answered BAD_REQUEST naming it), and the completion sender the
    /// [`HandlerServer`](crate::http::HandlerServer) installs checks the addresses it connects
    /// to against the same guard.
    ///
    /// Without this, the guard is [`CallbackGuard::default`]: https to public hosts only. A
    /// handler whose callers' callback receivers are on its own network (a Temporal server on the
    /// same machine or in the same cluster) must name them in rules:
    ///
    /// ```
    /// use nexus_runtime::security::CallbackGuard;
    /// use nexus_runtime::service::Dispatcher;
    /// let guard = CallbackGuard::new(["http://127.0.0.1:7243", "https://temporal.internal:7243"])
    ///     .expect("valid rules");
    /// let dispatcher = Dispatcher::builder().callback_guard(guard).build();
    /// assert_eq!(dispatcher.callback_guard().rules().len(), 2);
    /// ```
    #[must_use]
    pub fn callback_guard(mut self, guard: CallbackGuard) -> Self {
        self.callback_guard = Some(guard);
        self
    }

    /// Who may call which services and operations (default: everyone may call everything). Checked
    /// on every start and cancel, before the service is looked up, so a refused caller gets
    /// UNAUTHORIZED (403) whether or not what it asked for exists. See [`AccessPolicy`].
    #[must_use]
    pub fn access(mut self, policy: AccessPolicy) -> Self {
        self.access = policy;
        self
    }

    /// Caps on the running async operations of each principal (default: [`Quota::default`],
    /// 10,000 operations and 1 GiB of inputs per principal; [`Quota::unlimited`] for none).
    #[must_use]
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// Makes the dispatcher durable with `store` (a `MemoryStore`, `SqliteStore` or
    /// `PostgresStore`), as its [`DurabilityOptions`] say:
    ///
    /// - **Starts are deduplicated by request id, per principal**: the first request with a given
    ///   (principal, service, operation, request id) runs the handler; every later one gets the
    ///   recorded answer (the same sync result, the same operation token, the same OperationError
    ///   or non-retryable HandlerError) without running it again. While the first still runs, a retry is answered
    ///   UNAVAILABLE (retryable). A retryable error, a panic or a missed deadline is not recorded:
    ///   the retry runs the handler again. Requests without a request id are not deduplicated.
    ///   The same request id from another principal is another operation: it never sees, moves
    ///   or cancels the first one.
    /// - **Async operations are recorded** with the answer, under a lease of this dispatcher's
    ///   owner id, and cancel requests are recorded before the work is signalled.
    /// - **Completions go through an outbox**: finishing an operation and enqueueing its
    ///   completion is one transaction; a sender loop delivers it to the callback URL, retrying
    ///   with backoff (across restarts) until it is accepted, rejected for good, or too old (see
    ///   [`OutboxOptions`](super::OutboxOptions)). In-process callers get theirs directly.
    /// - **Nothing running is silently lost**: at start-up the dispatcher takes over the
    ///   operations its owner id left running (and, periodically, those whose owner's lease
    ///   expired), and resumes those declared [resumable](crate::OperationContext::start_resumable)
    ///   by calling their operation method again, or completes the others as failed with a
    ///   message saying the handler restarted.
    ///
    /// With a store, [`build`](Self::build) must run inside a Tokio runtime: it starts the
    /// dispatcher's background tasks (recovery and lease renewal, and the outbox sender).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// How the store is used: owner id, leases, outbox (see [`DurabilityOptions`]); only
    /// meaningful with a [store](Self::store).
    #[must_use]
    pub fn durability(mut self, options: DurabilityOptions) -> Self {
        self.durability = Some(options);
        self
    }

    /// Transforms payloads end to end with `codec` (for example decrypts and encrypts them with
    /// [`AesGcmCodec`](crate::codec::aes_gcm::AesGcmCodec)): every input is decoded before the
    /// operation method sees it, every result (a sync answer, or an async operation's completion)
    /// is encoded before it is recorded in the store or sent. Callers must encode and decode with
    /// a matching codec (see [`ClientBuilder::payload_codec`](crate::client::ClientBuilder::payload_codec)).
    ///
    /// An input the codec cannot decode is answered BAD_REQUEST with the codec's message (such as
    /// an unknown key id); a result it cannot encode is INTERNAL for a sync answer and fails an
    /// async operation. Given several times, the codecs form a chain in that order (see
    /// [`CodecChain`](crate::codec::CodecChain)). The details of operation errors are encoded too
    /// (see [`codec::details`](crate::codec::details)); messages travel as they are.
    #[must_use]
    pub fn payload_codec(mut self, codec: impl PayloadCodec) -> Self {
        self.codec.push(Arc::new(codec));
        self
    }

    /// Builds the dispatcher.
    ///
    /// # Panics
    /// With a store, outside a Tokio runtime.
    pub fn build(self) -> Dispatcher {
        let durability = self.durability;
        let durable = self
            .store
            .map(|store| Arc::new(Durable::new(store, durability.unwrap_or_default())));
        let dispatcher = Dispatcher {
            inner: Arc::new(Inner {
                names: NameTable::of(&self.services),
                services: self.services,
                running: RunningOperations::default(),
                access: self.access,
                quota: self.quota,
                completion_sender: Mutex::new(self.completion_sender),
                callback_guard: self.callback_guard.unwrap_or_default(),
                durable: durable.clone(),
                codec: self.codec,
            }),
        };
        if let Some(durable) = durable {
            assert!(
                tokio::runtime::Handle::try_current().is_ok(),
                "a Dispatcher with a store must be built inside a Tokio runtime: it starts \
                 background tasks (recovery, lease renewal, the completion outbox)"
            );
            durable::spawn_keeper(&dispatcher, durable.clone());
            durable::spawn_outbox(&dispatcher, durable);
        }
        dispatcher
    }
}
