//! The call scope: the deadline and cancellation of the operation a task is running for, so that
//! calls made from inside a handler inherit them.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::context::ContextParts;

tokio::task_local! {
    static CURRENT: Scope;
}

/// What the current task's scope holds.
enum Scope {
    /// A scope given whole: an async operation's work, or one made with [`CallScope::run`].
    Given(CallScope),
    /// A start request's: its cancellation signal is made only if a call inside asks for it
    /// (see [`RequestCancel`](super::RequestCancel)).
    Request {
        deadline: Option<Instant>,
        parts: Arc<ContextParts>,
    },
}

/// The deadline and cancellation signal that calls made by the current task inherit.
///
/// The dispatcher runs every handler (and every async operation's work) inside a scope, so a call
/// made from inside a handler uses the smaller of its own deadline and the handler's remaining one,
/// and is canceled when the handler's operation is canceled.
#[derive(Clone, Debug, Default)]
pub struct CallScope {
    /// When the enclosing operation must be done.
    pub deadline: Option<Instant>,
    /// Fires when the enclosing operation is canceled.
    pub cancel: CancellationToken,
}

impl CallScope {
    /// The scope of the current task, if it runs inside a handler.
    pub fn current() -> Option<CallScope> {
        CURRENT
            .try_with(|scope| match scope {
                Scope::Given(scope) => scope.clone(),
                Scope::Request { deadline, parts } => CallScope {
                    deadline: *deadline,
                    cancel: parts.cancel.token().clone(),
                },
            })
            .ok()
    }

    /// Runs `future` inside this scope.
    // Not an async fn: its future would hold the scope and `future` twice (as arguments, and
    // inside the task-local scope), for as long as an async operation's work runs.
    pub fn run<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(Scope::Given(self), future)
    }
}

/// Runs `future`, the operation method answering a start request, inside the request's scope:
/// `deadline`, and the request's cancellation signal (`parts.cancel`).
pub(crate) fn run_request<F: Future>(
    deadline: Option<Instant>,
    parts: Arc<ContextParts>,
    future: F,
) -> impl Future<Output = F::Output> {
    CURRENT.scope(Scope::Request { deadline, parts }, future)
}
