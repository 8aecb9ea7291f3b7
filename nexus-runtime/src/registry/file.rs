//! The registry's TOML file: endpoints by name, each with its targets, description and allowed
//! callers.
//!
//! ```toml
//! [endpoints.fraud]
//! description = "Fraud detection (the fraud team)"
//! targets = [{ url = "http://127.0.0.1:7243" }]
//! allowed_callers = ["payments", "team-*"]
//!
//! [endpoints.fraud-temporal]
//! targets = [{ temporal = "http://127.0.0.1:7243/nexus/endpoints/abc/services" }]
//!
//! [endpoints.local]
//! targets = [{ in_process = "fraud" }]
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::RegistryError;

/// Where an endpoint's calls go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A Nexus handler over HTTP at this base URL (such as a nexus-rs `HandlerServer`).
    Url(String),
    /// A Temporal Nexus endpoint's URL (`http://host:port/nexus/endpoints/{id}/services`).
    Temporal(String),
    /// A dispatcher in this process, registered under this name with
    /// [`RegistryBuilder::dispatcher`](super::RegistryBuilder::dispatcher).
    InProcess(String),
}

impl Target {
    /// Parses a target as written on a command line: `URL`, `temporal:URL` or
    /// `in-process:NAME`.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let text = text.trim();
        if let Some(url) = text.strip_prefix("temporal:") {
            return Ok(Self::Temporal(url.to_owned()));
        }
        if let Some(name) = text.strip_prefix("in-process:") {
            return Ok(Self::InProcess(name.to_owned()));
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(Self::Url(text.to_owned()));
        }
        Err(RegistryError::Invalid(format!(
            "target `{text}` is not an http(s) URL, `temporal:URL` or `in-process:NAME`"
        )))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::Temporal(url) => write!(f, "temporal:{url}"),
            Self::InProcess(name) => write!(f, "in-process:{name}"),
        }
    }
}

/// One named endpoint of the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointEntry {
    /// What the endpoint is, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where its calls go; several targets are balanced as an
    /// [`EndpointConfig`](crate::client::EndpointConfig)'s are.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// The callers that may use it: principal names, or prefix patterns ending in `*` (as in
    /// an [`AccessPolicy`](crate::security::AccessPolicy)); empty: every caller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_callers: Vec<String>,
}

/// The registry file's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// Endpoints by name.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointEntry>,
}

/// The longest endpoint name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Checks an endpoint name: 1 to 128 characters among ASCII letters, digits, `-`, `_` and `.`.
pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "endpoint name `{name}` must be 1 to {MAX_NAME_LEN} ASCII letters, digits, `-`, `_` or `.`"
        )))
    }
}

impl RegistryFile {
    /// Parses and checks a registry file's text.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let file: Self = toml::from_str(text).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        for (name, entry) in &file.endpoints {
            check_name(name)?;
            entry.check(name)?;
        }
        Ok(file)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads and parses the file at `path`; a missing file is an empty registry.
    pub fn read(path: &std::path::Path) -> Result<Self, RegistryError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(RegistryError::Io(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes the file at `path` (through a temporary file renamed over it, so a process
    /// reloading it never reads half a file).
    pub fn write(&self, path: &std::path::Path) -> Result<(), RegistryError> {
        let io =
            |e: std::io::Error| RegistryError::Io(format!("cannot write {}: {e}", path.display()));
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, self.to_toml()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

impl EndpointEntry {
    /// Checks the entry's targets and callers.
    pub fn check(&self, name: &str) -> Result<(), RegistryError> {
        if self.targets.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "endpoint `{name}` has no targets"
            )));
        }
        for target in &self.targets {
            match target {
                Target::Url(url) | Target::Temporal(url) => {
                    let parsed = url::Url::parse(url).map_err(|e| {
                        RegistryError::Invalid(format!("endpoint `{name}`: target `{url}`: {e}"))
                    })?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err(RegistryError::Invalid(format!(
                            "endpoint `{name}`: target `{url}` is not an http or https URL"
                        )));
                    }
                }
                Target::InProcess(dispatcher) => check_name(dispatcher)?,
            }
        }
        if let Some(bad) = self.allowed_callers.iter().find(|c| c.trim().is_empty()) {
            return Err(RegistryError::Invalid(format!(
                "endpoint `{name}`: allowed caller `{bad}` is empty"
            )));
        }
        Ok(())
    }
}
