//! HandlerError: the request failed, and the caller may retry it depending on its type.

use std::fmt;

use serde_json::json;

use super::failure::{Failure, HANDLER_ERROR_TYPE};

/// The predefined HandlerError types of the Nexus specification, with their HTTP status and
/// default retry behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandlerErrorType {
    /// 400: the request is malformed; not retried.
    BadRequest,
    /// 401: the caller is not authenticated; not retried.
    Unauthenticated,
    /// 403: the caller may not do this; not retried.
    Unauthorized,
    /// 404: unknown service, operation or operation token; not retried.
    NotFound,
    /// 408: the request did not finish in time; retried.
    RequestTimeout,
    /// 409: the request conflicts with the current state; not retried.
    Conflict,
    /// 429: a limit was hit; retried.
    ResourceExhausted,
    /// 500: the handler failed unexpectedly; retried.
    Internal,
    /// 501: the operation is not implemented; not retried.
    NotImplemented,
    /// 503: the handler is temporarily unavailable; retried.
    Unavailable,
    /// 520: the handler's own deadline ran out; retried.
    UpstreamTimeout,
    /// A type this implementation does not know; retried, as the specification requires.
    Other(String),
}

impl HandlerErrorType {
    /// Every predefined type, in specification order.
    pub const ALL: [HandlerErrorType; 11] = [
        Self::BadRequest,
        Self::Unauthenticated,
        Self::Unauthorized,
        Self::NotFound,
        Self::RequestTimeout,
        Self::Conflict,
        Self::ResourceExhausted,
        Self::Internal,
        Self::NotImplemented,
        Self::Unavailable,
        Self::UpstreamTimeout,
    ];

    /// The wire name, such as `BAD_REQUEST`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::NotFound => "NOT_FOUND",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::Conflict => "CONFLICT",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Internal => "INTERNAL",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::Unavailable => "UNAVAILABLE",
            Self::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Self::Other(name) => name,
        }
    }

    /// Parses a wire name; unknown names become [`HandlerErrorType::Other`].
    pub fn from_wire(name: &str) -> Self {
        Self::ALL
            .iter()
            .find(|t| t.as_str() == name)
            .cloned()
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }

    /// The HTTP status this type is sent with (`Other` types are sent as 500).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Unauthorized => 403,
            Self::NotFound => 404,
            Self::RequestTimeout => 408,
            Self::Conflict => 409,
            Self::ResourceExhausted => 429,
            Self::Internal | Self::Other(_) => 500,
            Self::NotImplemented => 501,
            Self::Unavailable => 503,
            Self::UpstreamTimeout => 520,
        }
    }

    /// The type a bare HTTP status stands for, when the body does not say.
    pub fn from_http_status(status: u16) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|t| t.http_status() == status)
            .cloned()
    }

    /// Whether the specification retries this type when no override is given.
    pub fn retryable_by_default(&self) -> bool {
        !matches!(
            self,
            Self::BadRequest
                | Self::Unauthenticated
                | Self::Unauthorized
                | Self::NotFound
                | Self::Conflict
                | Self::NotImplemented
        )
    }
}

impl fmt::Display for HandlerErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The handler could not process a request. Retryable or not according to its type, unless
/// `retryable_override` says otherwise.
///
/// ```
/// use nexus_runtime::error::{HandlerError, HandlerErrorType};
///
/// let err = HandlerError::bad_request("`userId` must not be empty");
/// assert_eq!(err.error_type, HandlerErrorType::BadRequest);
/// assert!(!err.is_retryable());
/// assert!(HandlerError::internal("db down").is_retryable());
/// assert!(!HandlerError::internal("corrupt").with_retryable(false).is_retryable());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerError {
    /// What kind of error this is.
    pub error_type: HandlerErrorType,
    /// A human-readable message.
    pub message: String,
    /// Overrides the type's default retry behaviour.
    pub retryable_override: Option<bool>,
    /// A stack trace, if one is shared.
    pub stack_trace: String,
    /// What caused this error.
    pub cause: Option<Box<Failure>>,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $variant:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Self {
                Self::new(HandlerErrorType::$variant, message)
            }
        )*
    };
}

impl HandlerError {
    /// A handler error of the given type.
    pub fn new(error_type: HandlerErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            retryable_override: None,
            stack_trace: String::new(),
            cause: None,
        }
    }

    constructors! {
        /// BAD_REQUEST (400, not retried).
        bad_request => BadRequest;
        /// UNAUTHENTICATED (401, not retried).
        unauthenticated => Unauthenticated;
        /// UNAUTHORIZED (403, not retried).
        unauthorized => Unauthorized;
        /// NOT_FOUND (404, not retried).
        not_found => NotFound;
        /// REQUEST_TIMEOUT (408, retried).
        request_timeout => RequestTimeout;
        /// CONFLICT (409, not retried).
        conflict => Conflict;
        /// RESOURCE_EXHAUSTED (429, retried).
        resource_exhausted => ResourceExhausted;
        /// INTERNAL (500, retried).
        internal => Internal;
        /// NOT_IMPLEMENTED (501, not retried).
        not_implemented => NotImplemented;
        /// UNAVAILABLE (503, retried).
        unavailable => Unavailable;
        /// UPSTREAM_TIMEOUT (520, retried).
        upstream_timeout => UpstreamTimeout;
    }

    /// Overrides whether the caller should retry.
    #[must_use]
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable_override = Some(retryable);
        self
    }

    /// Sets the cause.
    #[must_use]
    pub fn with_cause(mut self, cause: Failure) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// Whether the caller should retry the request.
    pub fn is_retryable(&self) -> bool {
        self.retryable_override
            .unwrap_or_else(|| self.error_type.retryable_by_default())
    }

    /// The Failure this error is sent as.
    pub fn to_failure(&self) -> Failure {
        let mut details = json!({ "type": self.error_type.as_str() });
        if let Some(retryable) = self.retryable_override {
            details["retryableOverride"] = json!(retryable);
        }
        Failure {
            message: self.message.clone(),
            stack_trace: self.stack_trace.clone(),
            metadata: [("type".to_owned(), HANDLER_ERROR_TYPE.to_owned())].into(),
            details: Some(details),
            cause: self.cause.clone(),
        }
    }

    /// Rebuilds a handler error from its Failure; `None` if the Failure is not a HandlerError.
    pub fn from_failure(failure: &Failure) -> Option<Self> {
        if failure.failure_type() != Some(HANDLER_ERROR_TYPE) {
            return None;
        }
        let error_type = HandlerErrorType::from_wire(failure.detail_str("type").unwrap_or(""));
        let retryable_override = failure
            .details
            .as_ref()
            .and_then(|d| d.get("retryableOverride"))
            .and_then(serde_json::Value::as_bool);
        Some(Self {
            error_type,
            message: failure.message.clone(),
            retryable_override,
            stack_trace: failure.stack_trace.clone(),
            cause: failure.cause.clone(),
        })
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler error ({}): {}", self.error_type, self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for HandlerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_retry_table_matches_the_spec() {
        let table = [
            ("BAD_REQUEST", 400, false),
            ("UNAUTHENTICATED", 401, false),
            ("UNAUTHORIZED", 403, false),
            ("NOT_FOUND", 404, false),
            ("REQUEST_TIMEOUT", 408, true),
            ("CONFLICT", 409, false),
            ("RESOURCE_EXHAUSTED", 429, true),
            ("INTERNAL", 500, true),
            ("NOT_IMPLEMENTED", 501, false),
            ("UNAVAILABLE", 503, true),
            ("UPSTREAM_TIMEOUT", 520, true),
        ];
        for (name, status, retryable) in table {
            let t = HandlerErrorType::from_wire(name);
            assert_eq!(t.as_str(), name);
            assert_eq!(t.http_status(), status, "{name}");
            assert_eq!(t.retryable_by_default(), retryable, "{name}");
            assert_eq!(HandlerErrorType::from_http_status(status), Some(t));
        }
        let unknown = HandlerErrorType::from_wire("SOMETHING_NEW");
        assert_eq!(unknown, HandlerErrorType::Other("SOMETHING_NEW".into()));
        assert!(unknown.retryable_by_default());
        assert_eq!(HandlerErrorType::from_http_status(418), None);
    }

    #[test]
    fn round_trips_through_failure_with_override() {
        for over in [None, Some(true), Some(false)] {
            let mut err = HandlerError::unavailable("try later")
                .with_cause(Failure::new("connection refused"));
            err.retryable_override = over;
            let failure = err.to_failure();
            assert_eq!(failure.metadata["type"], "nexus.HandlerError");
            assert_eq!(failure.detail_str("type"), Some("UNAVAILABLE"));
            let json = serde_json::to_string(&failure).unwrap();
            let back = HandlerError::from_failure(&serde_json::from_str(&json).unwrap()).unwrap();
            assert_eq!(back, err);
        }
        assert!(
            !HandlerError::unavailable("x")
                .with_retryable(false)
                .is_retryable()
        );
        assert!(
            HandlerError::bad_request("x")
                .with_retryable(true)
                .is_retryable()
        );
    }

    #[test]
    fn non_handler_failures_are_not_handler_errors() {
        assert!(HandlerError::from_failure(&Failure::new("plain")).is_none());
    }
}
