//! OperationError: the operation itself ended unsuccessfully. Never retried.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::failure::{Failure, OPERATION_ERROR_TYPE};

/// How an unsuccessful operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationErrorState {
    /// The operation failed.
    Failed,
    /// The operation was canceled.
    Canceled,
}

impl OperationErrorState {
    /// The wire name: `failed` or `canceled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(name: &str) -> Option<Self> {
        match name {
            "failed" => Some(Self::Failed),
            "canceled" => Some(Self::Canceled),
            _ => None,
        }
    }
}

impl fmt::Display for OperationErrorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation that ended as failed or canceled. It is the operation's outcome, not a transient
/// problem, so it is never retried.
///
/// Application data for the caller goes into the cause's details:
///
/// ```
/// use nexus_runtime::error::OperationError;
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Declined { code: u32 }
///
/// let err = OperationError::failed("card declined").with_details(&Declined { code: 51 });
/// assert_eq!(err.details::<Declined>().unwrap(), Some(Declined { code: 51 }));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct OperationError {
    /// Failed or canceled.
    pub state: OperationErrorState,
    /// A human-readable message.
    pub message: String,
    /// A stack trace, if one is shared.
    pub stack_trace: String,
    /// What caused the error; carries application details.
    pub cause: Option<Box<Failure>>,
}

impl OperationError {
    /// An operation error in the given state.
    pub fn new(state: OperationErrorState, message: impl Into<String>) -> Self {
        Self {
            state,
            message: message.into(),
            stack_trace: String::new(),
            cause: None,
        }
    }

    /// The operation failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(OperationErrorState::Failed, message)
    }

    /// The operation was canceled.
    pub fn canceled(message: impl Into<String>) -> Self {
        Self::new(OperationErrorState::Canceled, message)
    }

    /// Sets the cause.
    #[must_use]
    pub fn with_cause(mut self, cause: Failure) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// Attaches application details (serialized to JSON) as the cause, which a caller reads back
    /// with [`OperationError::details`]. A value that cannot be serialized is recorded as a string.
    #[must_use]
    pub fn with_details<T: Serialize + ?Sized>(self, details: &T) -> Self {
        let value = serde_json::to_value(details)
            .unwrap_or_else(|e| json!(format!("unserializable details: {e}")));
        let message = self.message.clone();
        self.with_cause(Failure::new(message).with_details(value))
    }

    /// Decodes the application details attached with [`OperationError::with_details`] (the
    /// nearest cause that has details).
    pub fn details<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        let found = self
            .cause
            .as_deref()
            .and_then(|c| c.chain().find_map(|f| f.details.clone()));
        found.map(serde_json::from_value).transpose()
    }

    /// Whether the operation was canceled.
    pub fn is_canceled(&self) -> bool {
        self.state == OperationErrorState::Canceled
    }

    /// The Failure this error is sent as.
    pub fn to_failure(&self) -> Failure {
        Failure {
            message: self.message.clone(),
            stack_trace: self.stack_trace.clone(),
            metadata: [("type".to_owned(), OPERATION_ERROR_TYPE.to_owned())].into(),
            details: Some(json!({ "state": self.state.as_str() })),
            cause: self.cause.clone(),
        }
    }

    /// Rebuilds an operation error from its Failure; `None` if the Failure is not an
    /// OperationError with a valid state.
    pub fn from_failure(failure: &Failure) -> Option<Self> {
        if failure.failure_type() != Some(OPERATION_ERROR_TYPE) {
            return None;
        }
        let state = OperationErrorState::from_wire(failure.detail_str("state")?)?;
        Some(Self {
            state,
            message: failure.message.clone(),
            stack_trace: failure.stack_trace.clone(),
            cause: failure.cause.clone(),
        })
    }

    /// Interprets a Failure received with a known state (a 424 response or a completion callback).
    /// An OperationError envelope is used as is; any other Failure (Temporal sends the envelope's
    /// cause, or its own failure types) becomes the cause of an OperationError in `state`.
    pub fn from_failure_with_state(failure: Failure, state: OperationErrorState) -> Self {
        if let Some(err) = Self::from_failure(&failure) {
            return err;
        }
        let message = if failure.message.is_empty() {
            format!("operation {state}")
        } else {
            failure.message.clone()
        };
        Self::new(state, message).with_cause(failure)
    }
}

impl fmt::Display for OperationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation {}: {}", self.state, self.message)?;
        if let Some(cause) = &self.cause
            && (cause.message != self.message || cause.cause.is_some())
        {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OperationError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_states() {
        for err in [
            OperationError::failed("boom").with_cause(Failure::new("root")),
            OperationError::canceled("stopped"),
        ] {
            let json = serde_json::to_string(&err.to_failure()).unwrap();
            let back = OperationError::from_failure(&serde_json::from_str(&json).unwrap()).unwrap();
            assert_eq!(back, err);
        }
    }

    #[test]
    fn bare_failures_are_wrapped_with_the_state_header() {
        let bare = Failure::new("async op failed on purpose");
        let err =
            OperationError::from_failure_with_state(bare.clone(), OperationErrorState::Failed);
        assert_eq!(err.state, OperationErrorState::Failed);
        assert_eq!(err.message, "async op failed on purpose");
        assert_eq!(err.cause.as_deref(), Some(&bare));
        let empty = OperationError::from_failure_with_state(
            Failure::default(),
            OperationErrorState::Canceled,
        );
        assert_eq!(empty.message, "operation canceled");
    }

    #[test]
    fn envelope_with_bad_state_is_not_an_operation_error() {
        let f = Failure::new("x")
            .with_metadata("type", OPERATION_ERROR_TYPE)
            .with_details(json!({"state": "running"}));
        assert!(OperationError::from_failure(&f).is_none());
    }

    #[test]
    fn typed_details_round_trip() {
        let err = OperationError::failed("no").with_details(&vec![1, 2, 3]);
        let wire: Failure =
            serde_json::from_str(&serde_json::to_string(&err.to_failure()).unwrap()).unwrap();
        let back = OperationError::from_failure(&wire).unwrap();
        assert_eq!(back.details::<Vec<u32>>().unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(OperationError::failed("x").details::<u8>().unwrap(), None);
    }
}
