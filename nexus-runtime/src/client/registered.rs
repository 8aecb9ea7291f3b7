//! Endpoints resolved through an [`EndpointRegistry`] (feature `registry`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::EndpointConfig;
use super::endpoint::EndpointState;
use crate::error::CallError;
use crate::registry::{EndpointRegistry, RegistryError};
use crate::security::Principal;

/// A client's registry, the caller it checks calls as, and the endpoints it built, by name with
/// the registry version they were built from.
pub(crate) struct Registered {
    registry: EndpointRegistry,
    caller: Principal,
    built: Mutex<HashMap<String, (u64, Arc<EndpointState>)>>,
}

impl Registered {
    pub(crate) fn new(registry: EndpointRegistry, caller: Principal) -> Self {
        Self {
            registry,
            caller,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The endpoint named `name` as the registry has it now: the one built before if it did
    /// not change since (keeping its breakers and limits), else a new one.
    pub(crate) fn resolve(&self, name: &str) -> Result<Arc<EndpointState>, CallError> {
        let invalid = |e: RegistryError| CallError::Invalid(e.to_string());
        let version = self.registry.check(name, &self.caller).map_err(invalid)?;
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, state)) = built.get(name)
            && *v == version
        {
            return Ok(state.clone());
        }
        let (version, targets) = self.registry.transports(name).map_err(invalid)?;
        let state = Arc::new(EndpointState::new(
            name.to_owned(),
            EndpointConfig::with_targets(targets),
        ));
        built.insert(name.to_owned(), (version, state.clone()));
        Ok(state)
    }
}
