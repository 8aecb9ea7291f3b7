//! `nexus endpoint list | add | remove`: the registry file, through the runtime's
//! `EndpointRegistry` (so every change is checked and audited as a running process's would be).

use std::path::{Path, PathBuf};

use anstyle::Style;
use nexus_runtime::registry::{AuditLog, EndpointEntry, EndpointRegistry, Target};
use nexus_runtime::security::Principal;

use crate::fail::Failure;

/// `nexus endpoint …`.
#[derive(Debug, clap::Subcommand)]
pub enum EndpointCommand {
    /// List the registry's endpoints.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add an endpoint, or replace the one with that name.
    Add {
        /// Its name (ASCII letters, digits, `-`, `_`, `.`).
        name: String,
        /// Its targets: `http(s)://…` (a Nexus handler), `temporal:URL` (a Temporal endpoint),
        /// `in-process:NAME` (a dispatcher a process registers).
        #[arg(required = true)]
        targets: Vec<String>,
        /// What it is, for people.
        #[arg(long, short, default_value = "")]
        description: String,
        /// A caller allowed to use it (repeatable; `team-*` patterns); none: every caller.
        #[arg(long = "allow", value_name = "CALLER")]
        allowed_callers: Vec<String>,
    },
    /// Remove an endpoint.
    Remove {
        /// Its name.
        name: String,
    },
}

/// Where changes are audited: `--audit-log`, else next to the registry file.
pub fn audit_path(registry: &Path, audit_log: Option<&Path>) -> PathBuf {
    audit_log.map_or_else(|| registry.with_extension("audit.jsonl"), Path::to_owned)
}

/// Who makes the changes: `--as`, else `$USER`.
fn who(as_user: Option<&str>) -> Principal {
    let name = as_user
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    Principal::local(name)
}

/// Runs `nexus endpoint …`.
pub fn run(
    command: EndpointCommand,
    registry_path: &Path,
    audit_log: Option<&Path>,
    as_user: Option<&str>,
) -> Result<(), Failure> {
    let audit = AuditLog::open(audit_path(registry_path, audit_log))
        .map_err(|e| Failure::usage(format!("cannot open the audit log: {e}")))?;
    let registry = EndpointRegistry::builder()
        .file(registry_path)
        .audit_log(audit)
        .build()
        .map_err(|e| Failure::usage(format!("{}: {e}", registry_path.display())))?;
    match command {
        EndpointCommand::List { json } => {
            let entries = registry.entries();
            if json {
                let value = serde_json::to_value(&entries).unwrap_or_default();
                anstream::println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
                return Ok(());
            }
            if entries.is_empty() {
                anstream::println!("no endpoints in {}", registry_path.display());
                return Ok(());
            }
            let bold = Style::new().bold();
            anstream::println!(
                "{bold}{:<20} {:<44} {:<20} DESCRIPTION{bold:#}",
                "NAME",
                "TARGETS",
                "CALLERS"
            );
            for (name, entry) in entries {
                let targets: Vec<String> = entry.targets.iter().map(ToString::to_string).collect();
                let callers = if entry.allowed_callers.is_empty() {
                    "(any)".to_owned()
                } else {
                    entry.allowed_callers.join(",")
                };
                anstream::println!(
                    "{name:<20} {:<44} {callers:<20} {}",
                    targets.join(","),
                    entry.description
                );
            }
            Ok(())
        }
        EndpointCommand::Add {
            name,
            targets,
            description,
            allowed_callers,
        } => {
            let targets = targets
                .iter()
                .map(|t| Target::parse(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::usage(e.to_string()))?;
            let entry = EndpointEntry {
                description,
                targets,
                allowed_callers,
            };
            registry
                .put(&who(as_user), &name, entry)
                .map_err(|e| Failure::usage(e.to_string()))?;
            anstream::eprintln!("endpoint `{name}` saved in {}", registry_path.display());
            Ok(())
        }
        EndpointCommand::Remove { name } => {
            let removed = registry
                .remove(&who(as_user), &name)
                .map_err(|e| Failure::usage(e.to_string()))?;
            if !removed {
                return Err(Failure::usage(format!(
                    "no endpoint named `{name}` in {}",
                    registry_path.display()
                )));
            }
            anstream::eprintln!("endpoint `{name}` removed from {}", registry_path.display());
            Ok(())
        }
    }
}
