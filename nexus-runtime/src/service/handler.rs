//! The object-safe face of a service implementation.

use std::fmt;

use futures::future::BoxFuture;

use crate::codec::{self, Content};
use crate::error::{HandlerError, OperationError, StartError};
use crate::operation::{
    AsyncOperation, Operation, OperationContext, OperationResult, OperationStart,
};

/// A start answer with the output already encoded.
pub enum RawStart {
    /// A sync result.
    Sync(Content),
    /// An async operation whose work produces an encoded result.
    Async(AsyncOperation<Content>),
}

impl fmt::Debug for RawStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sync(c) => f.debug_tuple("RawStart::Sync").field(c).finish(),
            Self::Async(op) => f.debug_tuple("RawStart::Async").field(op).finish(),
        }
    }
}

/// The future a [`ServiceHandler`] returns for a start request.
pub type StartFuture = BoxFuture<'static, Result<RawStart, StartError>>;

/// A service implementation as the dispatcher sees it: operations addressed by wire name, with
/// encoded inputs and outputs. Object-safe.
///
/// `#[nexus_service]` implements it for you (`<Trait>Service::handler(my_impl)`); implement it by
/// hand only for dynamic services such as proxies.
pub trait ServiceHandler: Send + Sync + 'static {
    /// The service's wire name.
    fn name(&self) -> &str;

    /// The wire names of the operations, for error messages and introspection.
    fn operation_names(&self) -> Vec<&str>;

    /// Starts `operation`, or returns `None` if the service has no such operation.
    fn start(&self, operation: &str, ctx: OperationContext, input: Content) -> Option<StartFuture>;
}

/// Decodes the input of `Op`, runs `f` (the team's method), and encodes its answer.
///
/// An undecodable input is a BAD_REQUEST naming the operation, the field and the problem; an
/// output that cannot be encoded is an INTERNAL error (a bug in the handler).
pub fn typed_start<Op, F, Fut>(ctx: OperationContext, input: Content, f: F) -> StartFuture
where
    Op: Operation,
    F: FnOnce(OperationContext, Op::Input) -> Fut + Send + 'static,
    Fut: Future<Output = OperationResult<Op::Output>> + Send + 'static,
{
    decode_input::<Op, _>(ctx, input, encode_output::<Op, _, _, _>(f))
}

/// The input half of [`typed_start`]: decodes the input of `Op` and runs `f` with it.
///
/// Generated dispatch tables call the two halves separately, each spanned on the user's input or
/// output type, so that a type that is not a payload is reported once, at that type.
pub fn decode_input<Op, F>(ctx: OperationContext, input: Content, f: F) -> StartFuture
where
    Op: Operation,
    F: FnOnce(OperationContext, Op::Input) -> StartFuture + Send + 'static,
{
    match codec::decode::<Op::Input>(&input) {
        Ok(input) => f(ctx, input),
        Err(e) => {
            let error = HandlerError::bad_request(format!(
                "invalid input for operation `{}`: {e}",
                Op::NAME
            ));
            Box::pin(std::future::ready(Err(error.into())))
        }
    }
}

/// The output half of [`typed_start`]: wraps `f` (the team's method) so that its answer is
/// encoded as the output of `Op`.
pub fn encode_output<Op, I, F, Fut>(
    f: F,
) -> impl FnOnce(OperationContext, I) -> StartFuture + Send + 'static
where
    Op: Operation,
    I: Send + 'static,
    F: FnOnce(OperationContext, I) -> Fut + Send + 'static,
    Fut: Future<Output = OperationResult<Op::Output>> + Send + 'static,
{
    move |ctx, input| {
        Box::pin(async move {
            match f(ctx, input).await? {
                OperationStart::Sync(output) => {
                    codec::encode(&output).map(RawStart::Sync).map_err(|e| {
                        HandlerError::internal(format!(
                            "cannot encode the output of `{}`: {e}",
                            Op::NAME
                        ))
                        .into()
                    })
                }
                OperationStart::Async(op) => Ok(RawStart::Async(op.map(|output: Op::Output| {
                    codec::encode(&output).map_err(|e| {
                        OperationError::failed(format!(
                            "cannot encode the output of `{}`: {e}",
                            Op::NAME
                        ))
                    })
                }))),
            }
        })
    }
}
