//! A start request's cancellation signal, made only when something asks for it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// Fires when the start request ends: answered, or given up by the caller (its future
/// dropped). Most operation methods never look at it, and a [`CancellationToken`] costs an
/// allocation and a lock at its creation, at each clone and at each drop; so the token is made
/// on the first [`token`](Self::token) (a method awaiting
/// [`cancelled`](crate::OperationContext::cancelled), or a call made inside the method, which
/// inherits it), and a request that nobody asked about only sets a flag when it ends.
#[derive(Debug, Default)]
pub(crate) struct RequestCancel {
    ended: AtomicBool,
    token: OnceLock<CancellationToken>,
}

impl RequestCancel {
    /// A signal that has fired already.
    pub fn ended() -> Self {
        Self {
            ended: AtomicBool::new(true),
            token: OnceLock::new(),
        }
    }

    /// The token, made now if it was not yet (canceled at once if the request has ended).
    pub fn token(&self) -> &CancellationToken {
        let token = self.token.get_or_init(CancellationToken::new);
        // Read after the token is in place: an `end` that did not see it has set the flag
        // before, and is seen here.
        if self.ended.load(Ordering::SeqCst) {
            token.cancel();
        }
        token
    }

    /// Whether the request has ended.
    pub fn is_cancelled(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Fires the signal (again: harmless).
    pub fn end(&self) {
        // Set before the token is looked for: a `token` that made it after this look sees
        // the flag and cancels it itself.
        self.ended.store(true, Ordering::SeqCst);
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RequestCancel;

    #[test]
    fn a_token_made_before_or_after_the_end_is_canceled() {
        let before = RequestCancel::default();
        let token = before.token().clone();
        assert!(!token.is_cancelled() && !before.is_cancelled());
        before.end();
        assert!(token.is_cancelled() && before.is_cancelled());

        let after = RequestCancel::default();
        after.end();
        assert!(after.token().is_cancelled());
        assert!(RequestCancel::ended().token().is_cancelled());
    }

    #[test]
    fn racing_ends_and_tokens_always_cancel_the_token() {
        for _ in 0..200 {
            let signal = std::sync::Arc::new(RequestCancel::default());
            let ending = {
                let signal = signal.clone();
                std::thread::spawn(move || signal.end())
            };
            let token = signal.token().clone();
            ending.join().unwrap();
            assert!(token.is_cancelled());
        }
    }
}
