//! The in-process transport: calls a [`Dispatcher`] in the same process.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{CancelRequest, StartRequest, StartResponse, Transport};
use crate::error::CallError;
use crate::service::Dispatcher;

/// Calls services hosted by a [`Dispatcher`] in the same process. Requests go through the same
/// dispatch path, codec and error mapping as over HTTP (inputs and outputs are encoded), so a test
/// in-process means the same as one over the wire.
///
/// ```
/// # use nexus_runtime::{service::Dispatcher, transport::InProcessTransport, Client};
/// let dispatcher = Dispatcher::builder().build();
/// let client = Client::builder()
///     .endpoint("local", InProcessTransport::new(dispatcher))
///     .build();
/// ```
#[derive(Clone, Debug)]
pub struct InProcessTransport {
    dispatcher: Dispatcher,
}

impl InProcessTransport {
    /// A transport into `dispatcher`.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

impl Transport for InProcessTransport {
    fn start(&self, request: StartRequest) -> BoxFuture<'static, Result<StartResponse, CallError>> {
        let dispatcher = self.dispatcher.clone();
        async move { dispatcher.start(request).await.map_err(CallError::from) }.boxed()
    }

    fn cancel(&self, request: CancelRequest) -> BoxFuture<'static, Result<(), CallError>> {
        let dispatcher = self.dispatcher.clone();
        async move { dispatcher.cancel(request).await.map_err(CallError::from) }.boxed()
    }
}
