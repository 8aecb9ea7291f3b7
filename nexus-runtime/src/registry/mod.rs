//! The endpoint registry (feature `registry`): named endpoints, each with its targets (HTTP
//! handlers, Temporal endpoints, dispatchers in this process), a description and the callers
//! allowed to use it; loaded from a TOML file (see [`RegistryFile`]) and reloaded when the
//! file changes, or changed at run time through [`EndpointRegistry::put`] and
//! [`remove`](EndpointRegistry::remove), without restarting the clients that use it
//! ([`ClientBuilder::registry`](crate::client::ClientBuilder::registry)). Every change and
//! every refused call is appended to an [`AuditLog`].
//!
//! ```
//! use nexus_runtime::registry::{EndpointEntry, EndpointRegistry, Target};
//! use nexus_runtime::security::Principal;
//!
//! let registry = EndpointRegistry::builder().build().unwrap();
//! let entry = EndpointEntry {
//!     description: "Fraud detection".into(),
//!     targets: vec![Target::Url("http://127.0.0.1:7243".into())],
//!     allowed_callers: vec!["payments".into()],
//! };
//! registry.put(&Principal::local("alice"), "fraud", entry).unwrap();
//! assert!(registry.check("fraud", &Principal::local("payments")).is_ok());
//! assert!(registry.check("fraud", &Principal::local("mallory")).is_err());
//! ```

mod audit;
mod file;

pub use audit::{AuditEvent, AuditLog};
pub use file::{EndpointEntry, MAX_NAME_LEN, RegistryFile, Target, check_name};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use crate::security::{AccessPolicy, Principal};
use crate::service::Dispatcher;
use crate::transport::{InProcessTransport, Transport};

/// Who a reload of the registry file is attributed to in the audit log.
pub const FILE_PRINCIPAL: &str = "file";

/// What the registry refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No endpoint has this name.
    #[error("no endpoint named `{0}` in the registry")]
    NotFound(String),
    /// The caller may not use the endpoint.
    #[error("caller `{caller}` may not use endpoint `{endpoint}`")]
    Refused {
        /// The caller's name.
        caller: String,
        /// The endpoint.
        endpoint: String,
    },
    /// A malformed file, name, target or entry.
    #[error("invalid registry: {0}")]
    Invalid(String),
    /// The file could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// One endpoint as the registry holds it.
struct Held {
    entry: EndpointEntry,
    /// Changes with every change of the entry: clients rebuild their endpoint when it does.
    version: u64,
    policy: AccessPolicy,
}

impl Held {
    fn new(name: &str, entry: EndpointEntry, version: u64) -> Self {
        let policy = if entry.allowed_callers.is_empty() {
            AccessPolicy::new()
        } else {
            AccessPolicy::new().allow(name, entry.allowed_callers.iter())
        };
        Self {
            entry,
            version,
            policy,
        }
    }
}

#[derive(Default)]
struct State {
    endpoints: BTreeMap<String, Held>,
    /// The file's text as last loaded or written.
    file_text: Option<String>,
    next_version: u64,
}

impl State {
    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }
}

struct Inner {
    state: RwLock<State>,
    file: Option<PathBuf>,
    audit: Option<AuditLog>,
    dispatchers: HashMap<String, Dispatcher>,
}

/// Named endpoints shared by clients and tools; cheap to clone (clones share everything).
///
/// The registry's caller allowlists use the [`AccessPolicy`] patterns: exact principal names,
/// prefixes ending in `*`; an endpoint with no allowed callers is open to every caller.
#[derive(Clone)]
pub struct EndpointRegistry {
    inner: Arc<Inner>,
}

impl fmt::Debug for EndpointRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointRegistry")
            .field("file", &self.inner.file)
            .field("endpoints", &self.names())
            .field("audit", &self.inner.audit.as_ref().map(AuditLog::path))
            .finish_non_exhaustive()
    }
}

/// Configures an [`EndpointRegistry`].
#[derive(Default)]
pub struct RegistryBuilder {
    file: Option<PathBuf>,
    audit: Option<AuditLog>,
    dispatchers: HashMap<String, Dispatcher>,
    endpoints: BTreeMap<String, EndpointEntry>,
}

impl fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("file", &self.file)
            .field("endpoints", &self.endpoints.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RegistryBuilder {
    /// Loads the endpoints from this TOML file (a missing file is an empty registry), and writes
    /// changes made through the API back to it; [`EndpointRegistry::reload`] and
    /// [`watch`](EndpointRegistry::watch) pick up changes made to it by others.
    #[must_use]
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = Some(path.as_ref().to_owned());
        self
    }

    /// Appends every change and every refused call to this log.
    #[must_use]
    pub fn audit_log(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// Makes `dispatcher` the target `in_process = "name"` of the file's endpoints.
    #[must_use]
    pub fn dispatcher(mut self, name: impl Into<String>, dispatcher: Dispatcher) -> Self {
        self.dispatchers.insert(name.into(), dispatcher);
        self
    }

    /// Adds an endpoint (before those of the file, which win on a shared name).
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>, entry: EndpointEntry) -> Self {
        self.endpoints.insert(name.into(), entry);
        self
    }

    /// Builds the registry, reading its file if it has one.
    pub fn build(self) -> Result<EndpointRegistry, RegistryError> {
        let mut state = State::default();
        let mut endpoints = self.endpoints;
        if let Some(path) = &self.file {
            let text = read_text(path)?;
            endpoints.extend(RegistryFile::parse(&text)?.endpoints);
            state.file_text = Some(text);
        }
        for (name, entry) in endpoints {
            check_name(&name)?;
            entry.check(&name)?;
            let version = state.version();
            state
                .endpoints
                .insert(name.clone(), Held::new(&name, entry, version));
        }
        Ok(EndpointRegistry {
            inner: Arc::new(Inner {
                state: RwLock::new(state),
                file: self.file,
                audit: self.audit,
                dispatchers: self.dispatchers,
            }),
        })
    }
}

/// The file's text; a missing file is an empty registry.
fn read_text(path: &Path) -> Result<String, RegistryError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(RegistryError::Io(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

impl EndpointRegistry {
    /// A builder.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The endpoint names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().endpoints.keys().cloned().collect()
    }

    /// The endpoint named `name`.
    pub fn get(&self, name: &str) -> Option<EndpointEntry> {
        self.read().endpoints.get(name).map(|h| h.entry.clone())
    }

    /// Every endpoint, by name.
    pub fn entries(&self) -> BTreeMap<String, EndpointEntry> {
        self.read()
            .endpoints
            .iter()
            .map(|(name, held)| (name.clone(), held.entry.clone()))
            .collect()
    }

    /// The registry's file, if it has one.
    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_deref()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn audit(&self, event: AuditEvent) {
        tracing::info!(
            who = %event.who,
            action = %event.action,
            endpoint = %event.endpoint,
            detail = %event.detail,
            "endpoint registry"
        );
        if let Some(log) = &self.inner.audit {
            log.append(&event);
        }
    }

    /// Adds or replaces endpoint `name`, on behalf of `who`; written to the registry's file if
    /// it has one. Audited as `add` or `update`.
    pub fn put(
        &self,
        who: &Principal,
        name: &str,
        entry: EndpointEntry,
    ) -> Result<(), RegistryError> {
        check_name(name)?;
        entry.check(name)?;
        let detail = describe(&entry);
        let mut state = self.write();
        let version = state.version();
        let previous = state
            .endpoints
            .insert(name.to_owned(), Held::new(name, entry, version));
        if let Err(e) = self.write_file(&mut state) {
            match previous {
                Some(previous) => state.endpoints.insert(name.to_owned(), previous),
                None => state.endpoints.remove(name),
            };
            return Err(e);
        }
        drop(state);
        let action = if previous.is_some() { "update" } else { "add" };
        self.audit(AuditEvent::now(who.name(), action, name, detail));
        Ok(())
    }

    /// Removes endpoint `name`, on behalf of `who`; `false` if there was none. Audited as
    /// `remove`.
    pub fn remove(&self, who: &Principal, name: &str) -> Result<bool, RegistryError> {
        let mut state = self.write();
        let Some(previous) = state.endpoints.remove(name) else {
            return Ok(false);
        };
        if let Err(e) = self.write_file(&mut state) {
            state.endpoints.insert(name.to_owned(), previous);
            return Err(e);
        }
        drop(state);
        self.audit(AuditEvent::now(who.name(), "remove", name, ""));
        Ok(true)
    }

    fn write_file(&self, state: &mut State) -> Result<(), RegistryError> {
        let Some(path) = &self.inner.file else {
            return Ok(());
        };
        let file = RegistryFile {
            endpoints: state
                .endpoints
                .iter()
                .map(|(name, held)| (name.clone(), held.entry.clone()))
                .collect(),
        };
        file.write(path)?;
        state.file_text = Some(file.to_toml());
        Ok(())
    }

    /// Reads the registry's file again and applies what changed: `Ok(true)` if anything did.
    /// An unreadable or invalid file changes nothing (the error is returned and audited as
    /// `reload-failed`); a registry without a file has nothing to reload.
    pub fn reload(&self) -> Result<bool, RegistryError> {
        let Some(path) = &self.inner.file else {
            return Ok(false);
        };
        let text = read_text(path)?;
        if self.read().file_text.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let file = match RegistryFile::parse(&text) {
            Ok(file) => file,
            Err(e) => {
                let mut state = self.write();
                // Reported once per bad text, not at every poll.
                if state.file_text.as_deref() != Some(text.as_str()) {
                    state.file_text = Some(text);
                    drop(state);
                    self.audit(AuditEvent::now(
                        FILE_PRINCIPAL,
                        "reload-failed",
                        "",
                        e.to_string(),
                    ));
                }
                return Err(e);
            }
        };
        let mut state = self.write();
        let mut changes = Vec::new();
        let removed: Vec<String> = state
            .endpoints
            .keys()
            .filter(|name| !file.endpoints.contains_key(*name))
            .cloned()
            .collect();
        for name in removed {
            state.endpoints.remove(&name);
            changes.push(format!("removed {name}"));
        }
        for (name, entry) in file.endpoints {
            let same = state
                .endpoints
                .get(&name)
                .is_some_and(|held| held.entry == entry);
            if same {
                continue;
            }
            let version = state.version();
            let what = if state.endpoints.contains_key(&name) {
                "changed"
            } else {
                "added"
            };
            changes.push(format!("{what} {name}"));
            state
                .endpoints
                .insert(name.clone(), Held::new(&name, entry, version));
        }
        state.file_text = Some(text);
        drop(state);
        if changes.is_empty() {
            return Ok(false);
        }
        self.audit(AuditEvent::now(
            FILE_PRINCIPAL,
            "reload",
            "",
            changes.join(", "),
        ));
        Ok(true)
    }

    /// Checks the registry's file every `interval` in a background task and reloads it when its
    /// content changed (see [`reload`](Self::reload)). The task ends when the registry is
    /// dropped, or when the returned handle is aborted. Must be called inside a Tokio runtime.
    pub fn watch(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let registry = EndpointRegistry { inner };
                if let Err(error) = registry.reload() {
                    tracing::warn!(%error, "registry file not reloaded");
                }
            }
        })
    }

    /// Whether `caller` may use endpoint `name`: its version (which changes with every change
    /// of the endpoint) if so. A refusal is audited as `refused`.
    pub fn check(&self, name: &str, caller: &Principal) -> Result<u64, RegistryError> {
        let state = self.read();
        let held = state
            .endpoints
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
        if held.policy.allows(caller, name, "") {
            return Ok(held.version);
        }
        drop(state);
        self.audit(AuditEvent::now(
            caller.name(),
            "refused",
            name,
            "the caller is not among the endpoint's allowed callers",
        ));
        Err(RegistryError::Refused {
            caller: caller.name().to_owned(),
            endpoint: name.to_owned(),
        })
    }

    /// The transports of endpoint `name`'s targets, and its version: HTTP transports for URLs
    /// and Temporal endpoints (feature `http`), in-process transports for dispatchers.
    pub fn transports(&self, name: &str) -> Result<(u64, Vec<Arc<dyn Transport>>), RegistryError> {
        let (version, targets) = {
            let state = self.read();
            let held = state
                .endpoints
                .get(name)
                .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
            (held.version, held.entry.targets.clone())
        };
        let transports = targets
            .iter()
            .map(|target| self.transport(name, target))
            .collect::<Result<_, _>>()?;
        Ok((version, transports))
    }

    fn transport(&self, name: &str, target: &Target) -> Result<Arc<dyn Transport>, RegistryError> {
        match target {
            Target::InProcess(dispatcher) => self
                .inner
                .dispatchers
                .get(dispatcher)
                .map(|d| Arc::new(InProcessTransport::new(d.clone())) as Arc<dyn Transport>)
                .ok_or_else(|| {
                    RegistryError::Invalid(format!(
                        "endpoint `{name}`: no dispatcher `{dispatcher}` was registered in this process"
                    ))
                }),
            #[cfg(feature = "http")]
            Target::Url(url) | Target::Temporal(url) => crate::http::HttpTransport::new(url)
                .map(|t| Arc::new(t) as Arc<dyn Transport>)
                .map_err(|e| RegistryError::Invalid(format!("endpoint `{name}`: {e}"))),
            #[cfg(not(feature = "http"))]
            Target::Url(url) | Target::Temporal(url) => Err(RegistryError::Invalid(format!(
                "endpoint `{name}`: target `{url}` needs nexus-runtime's `http` feature"
            ))),
        }
    }
}

fn describe(entry: &EndpointEntry) -> String {
    let targets: Vec<String> = entry.targets.iter().map(ToString::to_string).collect();
    let mut detail = format!("targets: {}", targets.join(", "));
    if !entry.allowed_callers.is_empty() {
        detail.push_str(&format!(
            "; allowed callers: {}",
            entry.allowed_callers.join(", ")
        ));
    }
    detail
}
