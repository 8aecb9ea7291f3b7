//! The library of the `nexus` command-line tool: the engine of `nexus definition diff`, which
//! compares two service definitions (nexus-rpc-gen format) and classifies every change as
//! breaking or compatible for the callers of the old one. See [`diff`].
//!
//! ```
//! use nexus_runtime::definition::Definition;
//! let old: Definition = serde_json::from_str(include_str!("../../contracts/fraud/fraud.v1.nexusrpc.json")).unwrap();
//! let mut new = old.clone();
//! new.services.get_mut("fraud.v1").unwrap().operations.remove("flagUser");
//! let report = nexus_cli::diff::diff(&old, &new);
//! assert!(report.is_breaking());
//! assert_eq!(report.changes[0].kind, "operation-removed");
//! ```

pub mod diff;
