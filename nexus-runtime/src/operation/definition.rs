//! Service definitions in the nexus-rpc-gen format: services, their operations, and JSON Schemas
//! for every input and output, so other languages can generate callers from a Rust contract.
//!
//! Named types go into the document's `types` and are referenced as `#/types/Name`; an operation
//! whose input or output is `()` has no `input`/`output` (nexus-rpc-gen's "no value").

use std::collections::BTreeMap;
use std::fmt;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Operation, Service};
use crate::codec::is_no_value;

/// The nexus-rpc-gen format version written by this crate.
pub const NEXUSRPC_VERSION: &str = "1.0.0";

/// A nexus-rpc-gen definition document: one or more services and the types they use.
///
/// ```
/// use nexus_runtime::definition::Definition;
/// # #[nexus_runtime::nexus_service(name = "echo.v1")]
/// # pub trait Echo {
/// #     async fn echo(&self, ctx: nexus_runtime::OperationContext, input: String)
/// #         -> nexus_runtime::OperationResult<String>;
/// # }
/// let doc = Definition::of::<EchoService>();
/// assert_eq!(doc.services["echo.v1"].operations["echo"].input, Some(serde_json::json!({"type": "string"})));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The format version, `1.0.0`.
    pub nexusrpc: String,
    /// Services by wire name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceDefinition>,
    /// Named JSON Schemas referenced as `#/types/Name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, Value>,
}

/// One service of a [`Definition`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDefinition {
    /// From the trait's doc comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Operations by wire name.
    #[serde(default)]
    pub operations: BTreeMap<String, OperationDefinition>,
}

/// One operation of a [`ServiceDefinition`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationDefinition {
    /// From the method's doc comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The input's schema; absent for no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The output's schema; absent for no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// Two definitions that cannot be merged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Both define a service with this name.
    #[error("service `{0}` is defined twice")]
    DuplicateService(String),
    /// Both define a type with this name, differently.
    #[error("type `{0}` is defined twice with different schemas")]
    ConflictingType(String),
}

impl Default for Definition {
    fn default() -> Self {
        Self {
            nexusrpc: NEXUSRPC_VERSION.to_owned(),
            services: BTreeMap::new(),
            types: BTreeMap::new(),
        }
    }
}

impl Definition {
    /// The definition of one service.
    pub fn of<S: Service>() -> Self {
        S::definition()
    }

    /// Adds another document's services and types. Services must not repeat; a type may repeat
    /// only with the same schema.
    pub fn merge(&mut self, other: Definition) -> Result<(), MergeError> {
        if let Some(name) = other
            .services
            .keys()
            .find(|k| self.services.contains_key(*k))
        {
            return Err(MergeError::DuplicateService(name.clone()));
        }
        for (name, schema) in &other.types {
            if self
                .types
                .get(name)
                .is_some_and(|existing| existing != schema)
            {
                return Err(MergeError::ConflictingType(name.clone()));
            }
        }
        self.services.extend(other.services);
        self.types.extend(other.types);
        Ok(())
    }

    /// The document as pretty-printed JSON with a trailing newline, as committed next to a
    /// contract.
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Environment variable that makes [`Definition::check_committed`] rewrite the file.
pub const UPDATE_ENV: &str = "NEXUS_UPDATE_DEFINITIONS";

impl Definition {
    /// Checks that the file at `path` holds exactly this definition, for a test next to a contract
    /// that keeps its committed `<service>.nexusrpc.json` in step with the code. When the
    /// environment variable `NEXUS_UPDATE_DEFINITIONS=1` is set, (re)writes the file instead.
    ///
    /// The error says what differs and how to regenerate the file.
    pub fn check_committed(&self, path: impl AsRef<std::path::Path>) -> Result<(), String> {
        let path = path.as_ref();
        let expected = self.to_json_pretty();
        if std::env::var_os(UPDATE_ENV).is_some_and(|v| v == "1") {
            return std::fs::write(path, &expected)
                .map_err(|e| format!("cannot write {}: {e}", path.display()));
        }
        let regenerate = format!(
            "regenerate it with `{UPDATE_ENV}=1 cargo test` in the contract's crate and commit it"
        );
        let committed = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}; {regenerate}", path.display()))?;
        if committed == expected {
            return Ok(());
        }
        let first_difference = committed
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}: committed `{a}`, generated `{b}`", i + 1))
            .unwrap_or_else(|| "the files differ in length".to_owned());
        Err(format!(
            "{} is out of date with the contract ({first_difference}); {regenerate}",
            path.display()
        ))
    }
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_pretty())
    }
}

/// Builds the definition of one service; used by generated code.
pub struct DefinitionBuilder {
    service_name: String,
    service: ServiceDefinition,
    generator: SchemaGenerator,
}

impl fmt::Debug for DefinitionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefinitionBuilder")
            .field("service_name", &self.service_name)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl DefinitionBuilder {
    /// Starts the definition of `S`.
    pub fn new<S: Service>() -> Self {
        let mut settings = SchemaSettings::draft07();
        settings.definitions_path = "/types".into();
        Self {
            service_name: S::NAME.to_owned(),
            service: ServiceDefinition {
                description: non_empty(S::DESCRIPTION),
                operations: BTreeMap::new(),
            },
            generator: settings.into_generator(),
        }
    }

    /// Adds an operation.
    #[must_use]
    pub fn operation<Op: Operation>(mut self) -> Self {
        let input = self.schema_of::<Op::Input>();
        let output = self.schema_of::<Op::Output>();
        self.service.operations.insert(
            Op::NAME.to_owned(),
            OperationDefinition {
                description: non_empty(Op::DESCRIPTION),
                input,
                output,
            },
        );
        self
    }

    fn schema_of<T: JsonSchema + 'static>(&mut self) -> Option<Value> {
        if is_no_value::<T>() {
            return None;
        }
        Some(self.generator.subschema_for::<T>().to_value())
    }

    /// Finishes the document.
    pub fn build(mut self) -> Definition {
        let types = self
            .generator
            .take_definitions(true)
            .into_iter()
            .collect::<BTreeMap<_, _>>();
        Definition {
            nexusrpc: NEXUSRPC_VERSION.to_owned(),
            services: [(self.service_name, self.service)].into(),
            types,
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}
