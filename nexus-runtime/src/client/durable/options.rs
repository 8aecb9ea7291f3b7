//! The call options kept with each operation (`CallerRecord::options`), so a process that resumes
//! the operation drives it as the one that scheduled it would have.
//!
//! They are the *effective* options, resolved against the endpoint's configuration when the call
//! was scheduled: a restart with a changed endpoint configuration does not change operations
//! already recorded. The absolute deadlines of the schedule-to-close and schedule-to-start
//! timeouts are in the record itself (`CallerRecord::deadlines`); the durations here are kept for
//! information, except start-to-close, which starts counting when the operation starts.
//!
//! The JSON carries `"version"`; this build writes version 1 and refuses a newer one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::CancellationType;
use crate::link::Link;
use crate::machinery::{RetryPolicy, Timeouts};
use crate::operation::Headers;
use crate::store::StoreError;

/// The version of the options this build writes.
pub(crate) const OPTIONS_VERSION: u32 = 1;

/// Version 1 of the stored options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredOptions {
    pub version: u32,
    #[serde(default)]
    pub headers: Headers,
    #[serde(default)]
    pub links: Vec<StoredLink>,
    pub cancellation_type: StoredCancellationType,
    pub retry: StoredRetry,
    pub request_timeout: Duration,
    #[serde(default)]
    pub schedule_to_close_timeout: Option<Duration>,
    #[serde(default)]
    pub schedule_to_start_timeout: Option<Duration>,
    #[serde(default)]
    pub start_to_close_timeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredLink {
    pub url: String,
    #[serde(rename = "type")]
    pub link_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoredCancellationType {
    Abandon,
    TryCancel,
    WaitRequested,
    WaitCompleted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredRetry {
    pub initial_interval: Duration,
    pub backoff_coefficient: f64,
    pub maximum_interval: Duration,
    #[serde(default)]
    pub maximum_attempts: Option<u32>,
    pub jitter: f64,
}

impl StoredOptions {
    /// The options of a call, resolved as the driver uses them.
    pub fn new(
        headers: &Headers,
        links: &[Link],
        cancellation_type: CancellationType,
        retry: &RetryPolicy,
        timeouts: &Timeouts,
    ) -> Self {
        Self {
            version: OPTIONS_VERSION,
            headers: headers.clone(),
            links: links
                .iter()
                .map(|l| StoredLink {
                    url: l.url.clone(),
                    link_type: l.link_type.clone(),
                })
                .collect(),
            cancellation_type: match cancellation_type {
                CancellationType::Abandon => StoredCancellationType::Abandon,
                CancellationType::TryCancel => StoredCancellationType::TryCancel,
                CancellationType::WaitRequested => StoredCancellationType::WaitRequested,
                CancellationType::WaitCompleted => StoredCancellationType::WaitCompleted,
            },
            retry: StoredRetry {
                initial_interval: retry.initial_interval,
                backoff_coefficient: retry.backoff_coefficient,
                maximum_interval: retry.maximum_interval,
                maximum_attempts: retry.maximum_attempts,
                jitter: retry.jitter,
            },
            request_timeout: timeouts.request,
            schedule_to_close_timeout: timeouts.schedule_to_close,
            schedule_to_start_timeout: timeouts.schedule_to_start,
            start_to_close_timeout: timeouts.start_to_close,
        }
    }

    /// As stored.
    pub fn to_json(&self) -> serde_json::Value {
        // A struct of strings, numbers and maps always serializes.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Reads stored options; a newer version or a malformed value is [`StoreError::Corrupt`].
    pub fn from_json(value: &serde_json::Value) -> Result<Self, StoreError> {
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| StoreError::Corrupt("stored call options have no `version`".into()))?;
        if version > u64::from(OPTIONS_VERSION) {
            return Err(StoreError::Corrupt(format!(
                "stored call options have version {version}; this build reads up to \
                 {OPTIONS_VERSION}: upgrade it"
            )));
        }
        serde_json::from_value(value.clone())
            .map_err(|e| StoreError::Corrupt(format!("malformed stored call options: {e}")))
    }

    pub fn links(&self) -> Vec<Link> {
        self.links
            .iter()
            .map(|l| Link::new(l.url.clone(), l.link_type.clone()))
            .collect()
    }

    pub fn cancellation_type(&self) -> CancellationType {
        match self.cancellation_type {
            StoredCancellationType::Abandon => CancellationType::Abandon,
            StoredCancellationType::TryCancel => CancellationType::TryCancel,
            StoredCancellationType::WaitRequested => CancellationType::WaitRequested,
            StoredCancellationType::WaitCompleted => CancellationType::WaitCompleted,
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        let r = &self.retry;
        let mut policy = RetryPolicy::default()
            .initial_interval(r.initial_interval)
            .backoff_coefficient(r.backoff_coefficient)
            .maximum_interval(r.maximum_interval)
            .jitter(r.jitter);
        policy.maximum_attempts = r.maximum_attempts;
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_is_versioned() {
        let headers: Headers = [("x-tenant".to_owned(), "acme".to_owned())].into();
        let links = [Link::new("https://example.com/a?b=c", "example.Link")];
        let retry = RetryPolicy::default()
            .initial_interval(Duration::from_millis(250))
            .maximum_attempts(7)
            .jitter(0.2);
        let timeouts = Timeouts {
            schedule_to_close: Some(Duration::from_secs(60)),
            start_to_close: Some(Duration::from_secs(30)),
            ..Timeouts::default()
        };
        let options = StoredOptions::new(
            &headers,
            &links,
            CancellationType::TryCancel,
            &retry,
            &timeouts,
        );
        let json = options.to_json();
        assert_eq!(json["version"], 1);
        assert_eq!(json["cancellationType"], "try_cancel");
        assert_eq!(json["links"][0]["type"], "example.Link");
        let back = StoredOptions::from_json(&json).expect("reads");
        assert_eq!(back, options);
        assert_eq!(back.retry_policy(), retry);
        assert_eq!(back.links(), links);
        assert_eq!(back.cancellation_type(), CancellationType::TryCancel);
        assert_eq!(back.start_to_close_timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn refuses_newer_and_malformed_options() {
        let newer = StoredOptions::from_json(&json!({"version": 2}));
        assert!(
            matches!(&newer, Err(StoreError::Corrupt(m)) if m.contains("version 2")),
            "{newer:?}"
        );
        let missing = StoredOptions::from_json(&json!({}));
        assert!(matches!(missing, Err(StoreError::Corrupt(_))));
        let malformed = StoredOptions::from_json(&json!({"version": 1, "retry": 3}));
        assert!(matches!(malformed, Err(StoreError::Corrupt(_))));
    }
}
