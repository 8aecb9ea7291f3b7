//! Untyped calls: operations named at run time, with JSON inputs and results, for tools that
//! know a service only by its definition (a command-line client, a gateway, a load generator).

use super::{CallOptions, Client, OperationHandle, Prepared};
use crate::codec::{self, Content};
use crate::definition::Definition;
use crate::error::CallError;
use crate::operation::Operation;
use crate::service::Service;

/// The operation of an untyped call: its input and output are any JSON value, and its service
/// and operation names are given to [`Client::schedule_untyped`] at run time (the constants
/// here are placeholders used in error messages only).
///
/// A handle of an untyped call is an `OperationHandle<Untyped>`: its
/// [`result`](OperationHandle::result) is the handler's JSON result (`null` for an operation
/// that returns no value).
#[derive(Clone, Copy, Debug, Default)]
pub struct Untyped;

/// The service of [`Untyped`]: a placeholder with an empty definition.
#[derive(Clone, Copy, Debug, Default)]
pub struct UntypedService;

impl Service for UntypedService {
    const NAME: &'static str = "untyped";
    const DESCRIPTION: &'static str = "";
    fn definition() -> Definition {
        Definition::default()
    }
}

impl Operation for Untyped {
    type Service = UntypedService;
    type Input = serde_json::Value;
    type Output = serde_json::Value;
    const NAME: &'static str = "untyped operation";
    const DESCRIPTION: &'static str = "";
}

impl Client {
    /// Schedules operation `operation` of service `service` on `endpoint`, with a JSON input
    /// (`None`: no value, an empty body), and returns its handle at once: the untyped
    /// counterpart of [`schedule`](Self::schedule), with the same recording, machinery and
    /// payload codec. Must be called from inside a Tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), nexus_runtime::CallError> {
    /// use nexus_runtime::{Client, OperationContext, OperationResult, CallOptions};
    /// use nexus_runtime::{service::Dispatcher, transport::InProcessTransport};
    /// # #[nexus_runtime::nexus_service(name = "echo.v1")]
    /// # pub trait Echo {
    /// #     async fn echo(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// # }
    /// # struct Impl;
    /// # impl Echo for Impl {
    /// #     async fn echo(&self, _: OperationContext, input: String) -> OperationResult<String> {
    /// #         Ok(input.into())
    /// #     }
    /// # }
    /// let dispatcher = Dispatcher::builder().service(EchoService::handler(Impl)).build();
    /// let client = Client::builder()
    ///     .endpoint("echo", InProcessTransport::new(dispatcher))
    ///     .build();
    /// let handle = client.schedule_untyped(
    ///     "echo", "echo.v1", "echo", Some(serde_json::json!("hi")), CallOptions::new(),
    /// )?;
    /// assert_eq!(handle.result().await?, serde_json::json!("hi"));
    /// # Ok(()) }
    /// ```
    pub fn schedule_untyped(
        &self,
        endpoint: &str,
        service: &str,
        operation: &str,
        input: Option<serde_json::Value>,
        options: CallOptions,
    ) -> Result<OperationHandle<Untyped>, CallError> {
        let runtime = super::current_runtime()?;
        let input = match input {
            Some(value) => codec::encode(&value).map_err(|e| {
                CallError::Codec(format!("cannot encode the input of `{operation}`: {e}"))
            })?,
            None => Content::empty(),
        };
        let (service, operation) = (service.to_owned().into(), operation.to_owned().into());
        match self.prepare_named(endpoint, service, operation, input, options)? {
            Prepared::New(local, attached, new) => {
                self.spawn_task(&runtime, local, super::Begin::New(new));
                Ok(OperationHandle::from_attached(
                    attached,
                    self.payload_codec(),
                ))
            }
            Prepared::Running(attached) => Ok(OperationHandle::from_attached(
                attached,
                self.payload_codec(),
            )),
        }
    }

    /// Starts an untyped operation (see [`schedule_untyped`](Self::schedule_untyped)) and
    /// returns once it started or answered synchronously.
    pub async fn start_untyped(
        &self,
        endpoint: &str,
        service: &str,
        operation: &str,
        input: Option<serde_json::Value>,
        options: CallOptions,
    ) -> Result<OperationHandle<Untyped>, CallError> {
        let handle = self.schedule_untyped(endpoint, service, operation, input, options)?;
        handle.wait_started().await?;
        Ok(handle)
    }
}
