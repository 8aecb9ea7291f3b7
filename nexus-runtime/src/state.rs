//! Where a caller's operation is in its life: the one list of the states, with the names stores
//! keep and spans, metrics labels and the admin API show.

use std::fmt;

/// Where a caller's operation is in its life, as its handle shows it and as stores keep it (by
/// its [`as_str`](Self::as_str) name). Also `nexus_runtime::client::OperationState` and
/// `nexus_runtime::store::OperationState`.
///
/// Why an operation is `Blocked` is not part of the state: its handle's
/// [`OperationInfo::blocked_reason`](crate::client::OperationInfo::blocked_reason) says.
///
/// ```text
/// Scheduled ─(breaker open)─> Blocked ─> Scheduled ─> attempt ─┬─> Succeeded (sync result)
///     ^                                                        ├─> Started (async, token) ─> Succeeded | Failed | Canceled
///     └──────────── BackingOff <─(retryable failure)───────────┤
///                                                              └─> Failed (non-retryable)
/// any pending state ─> TimedOut | Canceled
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperationState {
    /// Waiting for its next attempt to go out (or in flight), not started yet.
    Scheduled,
    /// The last attempt failed with a retryable error; the next one goes at `next_attempt_at`.
    BackingOff,
    /// Held back without an attempt (the circuit breaker is open).
    Blocked,
    /// The handler started it asynchronously; its token is known and its result will come.
    Started,
    /// It produced its result.
    Succeeded,
    /// It failed: an OperationError, a non-retryable HandlerError, or retries ran out.
    Failed,
    /// It was canceled (by the handler, or by the caller according to its cancellation type).
    Canceled,
    /// A timeout expired.
    TimedOut,
}

impl OperationState {
    /// Every state, in the order of the enum.
    pub const ALL: [Self; 8] = [
        Self::Scheduled,
        Self::BackingOff,
        Self::Blocked,
        Self::Started,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
        Self::TimedOut,
    ];

    /// The state's name, as stored and shown in spans, metrics and the admin API: `scheduled`,
    /// `backing_off`, `blocked`, `started`, `succeeded`, `failed`, `canceled`, `timed_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::BackingOff => "backing_off",
            Self::Blocked => "blocked",
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::TimedOut => "timed_out",
        }
    }

    /// Parses a stored name.
    ///
    /// ```
    /// use nexus_runtime::client::OperationState;
    /// assert_eq!(OperationState::parse("backing_off"), Some(OperationState::BackingOff));
    /// assert_eq!(OperationState::parse("BackingOff"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the operation has ended; a finished record never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Canceled | Self::TimedOut
        )
    }

    /// Whether it has started (async, with a token) or ended.
    pub fn is_started_or_done(self) -> bool {
        self == Self::Started || self.is_terminal()
    }
}

impl fmt::Display for OperationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::OperationState;

    #[test]
    fn every_name_parses_back() {
        for state in OperationState::ALL {
            assert_eq!(OperationState::parse(state.as_str()), Some(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(OperationState::parse("unknown"), None);
    }

    #[test]
    fn terminal_and_started() {
        let terminal: Vec<_> = OperationState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                OperationState::Succeeded,
                OperationState::Failed,
                OperationState::Canceled,
                OperationState::TimedOut
            ]
        );
        assert!(OperationState::Started.is_started_or_done());
        assert!(!OperationState::Blocked.is_started_or_done());
    }
}
