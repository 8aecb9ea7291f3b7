//! The store suite against the in-memory store.

mod store_support;

use std::sync::Arc;

use nexus_runtime::store::{MemoryStore, Store};

struct Memory(MemoryStore);

impl store_support::Harness for Memory {
    async fn open(_name: &str) -> Option<Self> {
        Some(Self(MemoryStore::new()))
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.0.clone())
    }

    async fn another_handle(&self) -> Arc<dyn Store> {
        Arc::new(self.0.clone())
    }

    async fn reopen(&self) -> Option<Arc<dyn Store>> {
        None
    }
}

store_suite!(Memory);
