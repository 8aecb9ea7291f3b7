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

    #[test]
    fn unknown_names_are_made_on_demand() {
        let table = NameTable::default();
        let names = table.get("svc", "op");
        assert_eq!(&*names.service, "svc");
        assert_eq!(&*names.operation, "op");
    }
}
