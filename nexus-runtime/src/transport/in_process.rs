//! The in-process transport: calls a [`Dispatcher`] in the same process.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{CancelRequest, StartRequest, StartResponse, Transport};
use crate::error::CallError;
use crate::security::Principal;
use crate::service::Dispatcher;

/// Calls services hosted by a [`Dispatcher`] in the same process. Requests go through the same
/// dispatch path, codec and error mapping as over HTTP (inputs and outputs are encoded), so a test
/// in-process means the same as one over the wire.
///
/// Requests come from [`Principal::anonymous`] unless [`principal`](Self::principal) names
/// another: the dispatcher's access policy, request-id scope, cancel rights and quotas apply to it
/// as to an authenticated HTTP caller.
///
/// ```
/// # use nexus_runtime::{service::Dispatcher, transport::InProcessTransport, Client};
/// let dispatcher = Dispatcher::builder().build();
/// let client = Client::builder()
///     .endpoint("local", InProcessTransport::new(dispatcher.clone()))
///     .endpoint("as-payments", InProcessTransport::new(dispatcher).principal(
///         nexus_runtime::security::Principal::local("payments"),
///     ))
///     .build();
/// ```
#[derive(Clone, Debug)]
pub struct InProcessTransport {
    dispatcher: Dispatcher,
    principal: Principal,
}

impl InProcessTransport {
    /// A transport into `dispatcher`, calling as the anonymous principal.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self {
            dispatcher,
            principal: Principal::anonymous(),
        }
    }

    /// Calls as `principal` (for example [`Principal::local`]).
    #[must_use]
    pub fn principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }
}

impl Transport for InProcessTransport {
    fn start(&self, request: StartRequest) -> BoxFuture<'static, Result<StartResponse, CallError>> {
        let (dispatcher, principal) = (self.dispatcher.clone(), self.principal.clone());
        async move {
            // Awaited through a pin: the start's future is not moved into the await.
            let starting = std::pin::pin!(dispatcher.start_as(&principal, request));
            starting.await.map_err(CallError::from)
        }
        .boxed()
    }

    fn cancel(&self, request: CancelRequest) -> BoxFuture<'static, Result<(), CallError>> {
        let (dispatcher, principal) = (self.dispatcher.clone(), self.principal.clone());
        async move {
            dispatcher
                .cancel_as(&principal, request)
                .await
                .map_err(CallError::from)
        }
        .boxed()
    }
}
