//! The wire names of the hosted operations, made once when the dispatcher is built and shared by
//! everything that keeps them for an operation's life (its running table entry, its async
//! context, its task), so that a running operation holds no copy of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::handler::ServiceHandler;
use crate::operation::OperationNames;

/// Every hosted operation's names, by service and operation.
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    by_service: BTreeMap<String, BTreeMap<String, Arc<OperationNames>>>,
}

impl NameTable {
    /// The names of the operations of `services`.
    pub fn of(services: &BTreeMap<String, Arc<dyn ServiceHandler>>) -> Self {
        let by_service = services
            .iter()
            .map(|(service, handler)| {
                let operations = handler
                    .operation_names()
                    .into_iter()
                    .map(|operation| {
                        (
                            operation.to_owned(),
                            OperationNames::new(service, operation),
                        )
                    })
                    .collect();
                (service.clone(), operations)
            })
            .collect();
        Self { by_service }
    }

    /// Whether `service` is hosted and has `operation`.
    pub fn hosts(&self, service: &str, operation: &str) -> bool {
        self.by_service
            .get(service)
            .is_some_and(|operations| operations.contains_key(operation))
    }

    /// The shared names of `service`/`operation` (names of their own if it is not hosted).
    pub fn get(&self, service: &str, operation: &str) -> Arc<OperationNames> {
        self.by_service
            .get(service)
            .and_then(|operations| operations.get(operation))
            .cloned()
            .unwrap_or_else(|| OperationNames::new(service, operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::codec::Content;
    use crate::operation::OperationContext;
    use crate::service::StartFuture;

    /// A service with two operations that answers nothing.
    struct Two;

    impl ServiceHandler for Two {
        fn name(&self) -> &str {
            "two.v1"
        }

        fn operation_names(&self) -> Vec<&str> {
            vec!["first", "second"]
        }

        fn start(&self, _: &str, _: OperationContext, _: Content) -> Option<StartFuture> {
            None
        }
    }

    #[test]
    fn a_hosted_operation_s_names_are_made_once_and_shared() {
        let services: BTreeMap<String, Arc<dyn ServiceHandler>> = BTreeMap::from([(
            "two.v1".to_owned(),
            Arc::new(Two) as Arc<dyn ServiceHandler>,
        )]);
        let table = NameTable::of(&services);
        let first = table.get("two.v1", "first");
        assert_eq!(&*first.service, "two.v1");
        assert_eq!(&*first.operation, "first");
        assert!(Arc::ptr_eq(&first, &table.get("two.v1", "first")));
        assert!(!Arc::ptr_eq(&first, &table.get("two.v1", "second")));
        assert!(
            !Arc::ptr_eq(&first, &table.get("two.v1", "third")),
            "not hosted"
        );
        assert!(table.hosts("two.v1", "first") && table.hosts("two.v1", "second"));
        assert!(!table.hosts("two.v1", "third") && !table.hosts("one.v1", "first"));
    }

    #[test]
    fn unknown_names_are_made_on_demand() {
        let table = NameTable::default();
        let names = table.get("svc", "op");
        assert_eq!(&*names.service, "svc");
        assert_eq!(&*names.operation, "op");
    }
}
