//! Per-principal quotas on running async operations.

use std::collections::HashMap;

use crate::error::HandlerError;
use crate::security::Principal;

/// Caps on what one principal may hold in a dispatcher at once: its running async operations,
/// and the bytes of their start inputs. A start whose async answer would go past a cap is refused
/// with RESOURCE_EXHAUSTED (429, retryable) before its work runs; the caller retries once some of
/// its operations have ended. Sync answers and replays of recorded answers are never refused.
///
/// Each principal (by name; all anonymous callers are one principal) has its own allowance, and
/// [`principal`](Self::principal) sets another one for a named caller. The caps are per
/// dispatcher (per process): replicas of a handler each apply them. Operations resumed after a
/// restart count, but are never refused.
///
/// The default is generous, to stop one caller from exhausting a handler rather than to meter
/// normal use: 10,000 running operations and 1 GiB of inputs per principal.
///
/// ```
/// use nexus_runtime::service::{Dispatcher, Quota};
/// let dispatcher = Dispatcher::builder()
///     .quota(Quota::default().max_running(100).principal("batch-importer", Quota::unlimited()))
///     .build();
/// # let _ = dispatcher;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quota {
    max_running: Option<usize>,
    max_input_bytes: Option<u64>,
    overrides: HashMap<String, Quota>,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            max_running: Some(Self::DEFAULT_MAX_RUNNING),
            max_input_bytes: Some(Self::DEFAULT_MAX_INPUT_BYTES),
            overrides: HashMap::new(),
        }
    }
}

impl Quota {
    /// The default cap on running async operations per principal.
    pub const DEFAULT_MAX_RUNNING: usize = 10_000;
    /// The default cap on the input bytes of a principal's running async operations (1 GiB).
    pub const DEFAULT_MAX_INPUT_BYTES: u64 = 1 << 30;

    /// No caps at all.
    pub fn unlimited() -> Self {
        Self {
            max_running: None,
            max_input_bytes: None,
            overrides: HashMap::new(),
        }
    }

    /// At most `n` running async operations per principal.
    #[must_use]
    pub fn max_running(mut self, n: usize) -> Self {
        self.max_running = Some(n);
        self
    }

    /// At most `bytes` of start inputs held by a principal's running async operations.
    #[must_use]
    pub fn max_input_bytes(mut self, bytes: u64) -> Self {
        self.max_input_bytes = Some(bytes);
        self
    }

    /// The allowance of the principal named `name` (its own overrides are ignored).
    #[must_use]
    pub fn principal(mut self, name: impl Into<String>, quota: Quota) -> Self {
        self.overrides.insert(name.into(), quota);
        self
    }

    /// The allowance that applies to `principal`.
    fn of(&self, principal: &Principal) -> &Quota {
        self.overrides.get(principal.name()).unwrap_or(self)
    }

    /// Whether `principal`, now holding `usage`, may start one more operation with `input_bytes`
    /// of input; RESOURCE_EXHAUSTED otherwise.
    pub(crate) fn admit(
        &self,
        principal: &Principal,
        usage: Usage,
        input_bytes: u64,
    ) -> Result<(), HandlerError> {
        let quota = self.of(principal);
        if let Some(max) = quota.max_running
            && usage.running >= max
        {
            return Err(HandlerError::resource_exhausted(format!(
                "caller `{principal}` has {} async operations running, its limit here; retry \
                 when some have ended",
                usage.running
            )));
        }
        if let Some(max) = quota.max_input_bytes
            && usage.input_bytes.saturating_add(input_bytes) > max
        {
            return Err(HandlerError::resource_exhausted(format!(
                "the running async operations of caller `{principal}` would hold more than \
                 {max} bytes of input, its limit here; retry when some have ended"
            )));
        }
        Ok(())
    }
}

/// What one principal holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub running: usize,
    pub input_bytes: u64,
}
