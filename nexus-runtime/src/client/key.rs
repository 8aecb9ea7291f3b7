//! The key of a local operation as the client keeps it while the operation runs here: the
//! endpoint's name shared with the endpoint, the service and operation names borrowed from the
//! contract (a typed call's are `'static`), and the request id. One copy per operation, shared by
//! its registry entry, its task and its handles; the store's [`RequestKey`] is made from it
//! when a record needs one.

use std::borrow::Cow;
use std::sync::Arc;

use crate::store::{CallerRecord, RequestKey};

/// Which operation: endpoint, service, operation and request id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OperationKey {
    pub endpoint: Arc<str>,
    pub service: Cow<'static, str>,
    pub operation: Cow<'static, str>,
    pub request_id: Box<str>,
}

impl OperationKey {
    /// The key of stored operation `record`, its endpoint's name shared with `endpoint`.
    pub fn of_stored(endpoint: Arc<str>, record: &CallerRecord) -> Self {
        Self {
            endpoint,
            service: Cow::Owned(record.service.clone()),
            operation: Cow::Owned(record.operation.clone()),
            request_id: record.request_id.as_str().into(),
        }
    }

    /// The store's key of the same operation.
    pub fn to_request_key(&self) -> RequestKey {
        RequestKey {
            endpoint: self.endpoint.to_string(),
            service: self.service.to_string(),
            operation: self.operation.to_string(),
            request_id: self.request_id.to_string(),
        }
    }
}

impl From<RequestKey> for OperationKey {
    fn from(key: RequestKey) -> Self {
        Self {
            endpoint: key.endpoint.into(),
            service: Cow::Owned(key.service),
            operation: Cow::Owned(key.operation),
            request_id: key.request_id.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_the_stores_key() {
        let key = RequestKey {
            endpoint: "payments".into(),
            service: "fraud.v1".into(),
            operation: "check".into(),
            request_id: "req-1".into(),
        };
        let local = OperationKey::from(key.clone());
        assert_eq!(local.to_request_key(), key);
        let typed = OperationKey {
            endpoint: "payments".into(),
            service: Cow::Borrowed("fraud.v1"),
            operation: Cow::Borrowed("check"),
            request_id: "req-1".into(),
        };
        assert_eq!(typed, local, "borrowed and owned names are the same key");
    }
}
