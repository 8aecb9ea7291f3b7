//! A contract written against the runtime renamed to `nexus` in Cargo.toml
//! (`nexus = { package = "nexus-rpc-runtime", ... }`). `#[nexus::nexus_service]` has no `crate = ...`
//! override: the macro finds the runtime through proc-macro-crate, so the generated code says
//! `::nexus::...`, and `::nexus_runtime` does not exist in this crate.

use nexus::{OperationContext, OperationResult};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A greeting request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Greet {
    /// Whom to greet.
    pub name: String,
}

/// Greets people.
#[nexus::nexus_service(name = "greeter.v1")]
pub trait Greeter {
    /// Says hello.
    async fn hello(&self, ctx: OperationContext, input: Greet) -> OperationResult<String>;
}

/// An implementation of [`Greeter`].
#[derive(Debug, Default)]
pub struct English;

impl Greeter for English {
    async fn hello(&self, _ctx: OperationContext, input: Greet) -> OperationResult<String> {
        Ok(format!("Hello, {}!", input.name).into())
    }
}
